"""`git agent run --on box --attempts N` through the real sshd on loopback (tests/remote/
conftest.py), as root and as an unprivileged user: 8 sessions at once from one base, each its own
worktree on the remote, all fetched back checked, each with its own result."""

from __future__ import annotations

from tests.conftest import Actor
from tests.remote.conftest import Sshd
from tests.remote.test_over_ssh import setup

# each attempt writes its own name (GIT_AGENT_SESSION) and reads the untracked file of the base
SCRIPT = 'echo "$GIT_AGENT_SESSION" > who.txt; cat untracked.txt >> who.txt'


def test_eight_parallel_remote_sessions_each_with_its_own_result(actor: Actor,
                                                                  sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    (repo / "untracked.txt").write_text("mine\n")
    actor.own(repo)
    p = actor.agent("run", "--on", "box", "--attempts", "8", "-s", "p", "--", "sh", "-c",
                    SCRIPT, cwd=repo, timeout=300)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 0, p.stderr
    assert "8 of 8 attempts succeeded" in p.stderr, p.stderr
    bases = {actor.git("rev-parse", f"refs/agent-base/p.{i}", cwd=repo).strip()
             for i in range(1, 9)}
    assert len(bases) == 1  # one base snapshot for all
    base = bases.pop()
    assert actor.git("show", f"{base}:untracked.txt", cwd=repo) == "mine\n"
    for i in range(1, 9):
        tip = actor.git("rev-parse", f"agent/p.{i}", cwd=repo).strip()
        assert actor.git("rev-parse", f"{tip}^", cwd=repo).strip() == base
        assert actor.git("show", f"{tip}:who.txt", cwd=repo) == f"p.{i}\nmine\n"
        assert f"[p.{i}] exit 0: session 'p.{i}': agent/p.{i} fetched from box" in p.stderr
    assert actor.git("status", "--porcelain", cwd=repo) == "?? untracked.txt\n"
    rows = [ln.split() for ln in actor.agent("list", cwd=repo).stdout.splitlines()[1:]]
    assert sorted(r[0] for r in rows) == [f"p.{i}" for i in range(1, 9)]
    assert all(r[3:5] == ["remote", "box"] for r in rows), rows


def test_attempts_on_a_remote_say_each_status_and_fail_if_one_fails(actor: Actor,
                                                                    sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    p = actor.agent("run", "--on", "box", "--attempts", "3", "-s", "q", "--", "sh", "-c",
                    'echo "$GIT_AGENT_SESSION" > w.txt; [ "$GIT_AGENT_SESSION" != q.2 ] || '
                    "exit 5", cwd=repo, timeout=300)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 5, p.stderr
    assert "[q.2] exit 5" in p.stderr and "[q.1] exit 0" in p.stderr, p.stderr
    assert "2 of 3 attempts succeeded; failed: q.2 (5)" in p.stderr
    # the failed attempt's work is captured and fetched all the same
    assert actor.git("show", "agent/q.2:w.txt", cwd=repo) == "q.2\n"
