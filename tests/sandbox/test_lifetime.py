"""Promise: the sandbox lives no longer than the process the user started (docs/security.md,
"Lifetime"), whichever way it was started, and a run whose agent exited is captured even when
signals keep coming. Through git's wrapper, as root and as an unprivileged user."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import Actor

pytestmark = pytest.mark.sandbox

AGENT = "import time; open('kept.txt', 'w').write('kept\\n'); time.sleep(1000)"


def _session_processes(marker: str) -> list[str]:
    """Every process whose command line holds marker (git, git-agent, bwrap, the agent)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if marker.encode() in cmd and stat.rpartition(")")[2].split()[0] != "Z":
            shown = cmd.replace(b"\0", b" ").decode(errors="replace")
            out.append(f"{pid} {shown}")
    return out


def _poll(what: str, check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"{what} within {timeout} s")


def _start(actor: Actor, repo: Path, session: str, marker: str, *prefix: str,
           direct: bool = False) -> subprocess.Popen[bytes]:
    agent = ["git-agent"] if direct else ["git", "agent"]
    argv = [*prefix, *agent, "run", "-s", session, "--",
            "/usr/bin/python3", "-c", AGENT, marker]
    return subprocess.Popen(actor._argv(argv), cwd=repo, env=actor.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def _agent_at_work(actor: Actor, repo: Path, session: str) -> None:
    state = actor.home / ".local/state/git-agent"
    _poll("the agent wrote its file",
          lambda: list(state.glob(f"*/sessions/{session}/upper/kept.txt")))
    # the base snapshot is recorded (what a later capture needs)
    _poll("the base was recorded", lambda: actor.run(
        ["git", "rev-parse", "-q", "--verify", f"refs/agent-base/{session}"], cwd=repo
    ).returncode == 0)


@pytest.mark.parametrize("how", ["kill -9 git", "timeout -s KILL", "kill -9 git-agent"])
def test_the_sandbox_dies_with_the_process_the_user_started(actor: Actor, how: str) -> None:
    repo = actor.make_repo()
    marker = f"ga-life-{uuid.uuid4().hex}"
    prefix = ("timeout", "-s", "KILL", "5") if how == "timeout -s KILL" else ()
    user = _start(actor, repo, "life", marker, *prefix, direct=how == "kill -9 git-agent")
    try:
        _agent_at_work(actor, repo, "life")
        if how.startswith("kill -9"):
            os.kill(user.pid, signal.SIGKILL)  # setpriv and env exec'd git (git-agent): same pid
        user.wait(timeout=60)
        _poll(f"no process of the session left: {_session_processes(marker)}",
              lambda: not _session_processes(marker))
    finally:
        for line in _session_processes(marker):
            os.kill(int(line.split()[0]), signal.SIGKILL)
    # the work is on the branch: captured by git agent itself, or by the next review
    review = actor.agent("review", "life", "--stat", cwd=repo)
    assert review.returncode == 0, review.stderr
    assert actor.git("show", "agent/life:kept.txt", cwd=repo) == "kept\n"


RUNS = int(os.environ.get("GIT_AGENT_TIMEOUT_RUNS", "10"))  # 40 by hand: see the report


def test_a_signal_after_the_agent_exits_does_not_skip_the_capture(actor: Actor) -> None:
    """`timeout 1 git agent run ...`: SIGTERM to the whole group, then git's wrapper forwards
    it a second time, while git agent captures; every run must leave its file on the branch."""
    repo = actor.make_repo()
    deadline = time.monotonic() + 30 + 6 * RUNS
    done: list[str] = []
    for i in range(RUNS):
        if time.monotonic() > deadline:
            break
        p = actor.run(["timeout", "1", "git", "agent", "run", "-s", f"t{i}", "--",
                       "sh", "-c", "echo x > f; sleep 5"], cwd=repo, timeout=60)
        assert p.returncode == 124, (i, p.stderr)  # timeout's own status: it did time out
        shown = actor.run(["git", "show", f"agent/t{i}:f"], cwd=repo)
        assert shown.stdout == "x\n", (i, p.stderr, shown.stderr)
        done.append(f"t{i}")
    assert len(done) >= min(RUNS, 3), done
