"""`git agent run --on` through a real sshd on loopback (tests/remote/conftest.py), as root and as
an unprivileged user: the base goes out as a bundle (untracked work included), the agent runs in
the remote's bwrap sandbox, agent/S comes back checked, and review / apply work on it here."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import Actor
from tests.remote.conftest import Sshd
from tests.remote.test_over_ssh import setup


def run_on(actor: Actor, repo: Path, *cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    p = actor.agent("run", "--on", "box", "-s", "s", "--", *cmd, cwd=repo, **kw)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_run_on_round_trip_with_an_untracked_file(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    (repo / "untracked.txt").write_text("mine\n")
    actor.own(repo)
    p = run_on(actor, repo, "sh", "-c", "echo x >> untracked.txt")
    assert p.returncode == 0, p.stderr
    assert "fetched from box" in p.stderr
    base = actor.git("rev-parse", "refs/agent-base/s", cwd=repo).strip()
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("rev-parse", f"{tip}^", cwd=repo).strip() == base
    assert actor.git("show", f"{tip}:untracked.txt", cwd=repo) == "mine\nx\n"
    assert (repo / "untracked.txt").read_text() == "mine\n"  # only apply changes the worktree
    r = actor.agent("review", "s", "--stat", cwd=repo)
    assert r.returncode == 0 and "untracked.txt" in r.stdout, r.stdout + r.stderr
    a = actor.agent("apply", "s", cwd=repo)
    assert a.returncode == 0, a.stderr
    assert (repo / "untracked.txt").read_text() == "mine\nx\n"


def test_run_on_an_incremental_run(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    assert run_on(actor, repo, "sh", "-c", "echo one > a.txt").returncode == 0
    first = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    (repo / "mine.txt").write_text("edited here meanwhile\n")
    actor.own(repo)
    p = run_on(actor, repo, "sh", "-c", "cat mine.txt > b.txt; cat a.txt >> b.txt")
    assert p.returncode == 0, p.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert tip != first
    assert actor.git("show", f"{tip}:b.txt", cwd=repo) == "edited here meanwhile\none\n"
    # nothing new the third time: the branch is left as it is
    p = run_on(actor, repo, "true")
    assert p.returncode == 0 and "nothing new" in p.stderr, p.stderr
    assert actor.git("rev-parse", "agent/s", cwd=repo).strip() == tip
