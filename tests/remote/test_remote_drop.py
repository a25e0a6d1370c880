"""`git agent drop` of a session that ran on a remote (through the loopback sshd, as root and as
an unprivileged user): the remote's copy goes too (its worktree, its session state, its refs in
the worker's store); with the remote unreachable the session is dropped here and one line says
what is left there."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import Actor
from tests.remote.conftest import Sshd
from tests.remote.test_over_ssh import setup


def _remote(sshd: Sshd, actor: Actor, repo: Path) -> tuple[Path, Path, Path]:
    """The worker's store of this repository, the session's worktree and state dir there."""
    repo_id = actor.git("rev-parse", "refs/agent-id", cwd=repo).strip()
    home = Path(f"~{sshd.user}").expanduser()
    store = home / ".local/share/git-agent/remote" / f"{repo_id}.git"
    wt = Path((store / "git-agent-sessions" / "s").read_text())
    states = list((home / ".local/state/git-agent").glob("*/sessions/s"))
    owned = [d for d in states if (d.parent.parent / "worktree").read_text().strip() == str(wt)]
    assert len(owned) == 1, states
    return store, wt, owned[0]


def _refs(store: Path) -> str:
    return subprocess.run(["git", "--git-dir", str(store), "for-each-ref", "--format=%(refname)"],
                          capture_output=True, text=True, check=True).stdout


def test_drop_of_a_remote_session_removes_its_copy_there(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    p = actor.agent("run", "--on", "box", "-s", "s", "--", "sh", "-c", "echo x > x.txt",
                    cwd=repo)
    assert p.returncode == 0, p.stderr
    store, wt, state = _remote(sshd, actor, repo)
    assert wt.is_dir() and state.is_dir() and "refs/heads/agent/s" in _refs(store)
    d = actor.agent("drop", "-f", "s", cwd=repo)
    assert d.returncode == 0 and d.stderr == "git agent: dropped session 's'\n", d.stderr
    assert not wt.exists() and not state.exists()
    assert not (store / "git-agent-sessions" / "s").exists()
    assert "/s\n" not in _refs(store)  # no agent/s, agent-base/s, history of s there
    assert actor.git("for-each-ref", "refs/heads/agent/", "refs/agent-base/", cwd=repo) == ""
    # the next run of that name starts afresh there, as here
    p = actor.agent("run", "--on", "box", "-s", "s", "--", "sh", "-c", "test ! -e x.txt",
                    cwd=repo)
    assert p.returncode == 0, p.stderr


def test_drop_with_the_remote_unreachable_drops_here_and_says_what_is_left(
        actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    p = actor.agent("run", "--on", "box", "-s", "s", "--", "sh", "-c", "echo x > x.txt",
                    cwd=repo)
    assert p.returncode == 0, p.stderr
    store, wt, state = _remote(sshd, actor, repo)
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    actor.git("config", "agent.remote.box.url", f"ssh://{sshd.user}@127.0.0.1:{port}", cwd=repo)
    d = actor.agent("drop", "-f", "s", cwd=repo)
    assert d.returncode == 0 and "Traceback" not in d.stderr
    lines = d.stderr.splitlines()
    assert lines[0] == "git agent: dropped session 's'" and len(lines) == 2, d.stderr
    assert "cannot reach 127.0.0.1" in lines[1] and "on box" in lines[1] and "is left" in lines[1]
    assert actor.git("for-each-ref", "refs/heads/agent/", "refs/agent-base/", cwd=repo) == ""
    assert wt.is_dir() and state.is_dir()  # left there, as said
