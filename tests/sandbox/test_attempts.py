"""`git agent run --attempts N` on this machine, as root and as an unprivileged user: N sessions
S.1..S.N from one base snapshot (git is the oracle), at once, each captured to agent/S.i; stdin
/dev/null, output in each session's attempt.log; names refused before anything starts; each
status said; ^C stops all and each is still captured."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Actor

pytestmark = pytest.mark.sandbox

SCRIPT = ('echo "$GIT_AGENT_SESSION" > who.txt; cat untracked.txt >> who.txt; '
          'echo "out of $GIT_AGENT_SESSION"; echo "err of $GIT_AGENT_SESSION" >&2; '
          'if read line; then echo "stdin: $line"; else echo "stdin is empty"; fi')


def _state(actor: Actor) -> Path:
    return actor.home / ".local/state/git-agent"


def _refs(actor: Actor, repo: Path, prefix: str) -> str:
    return actor.git("for-each-ref", "--format=%(refname)", prefix, cwd=repo)


def test_attempts_run_from_one_base_each_captured_to_its_own_branch(actor: Actor) -> None:
    repo = actor.make_repo()
    (repo / "untracked.txt").write_text("mine\n")
    (repo / "README.md").write_text("edited, not committed\n")
    actor.own(repo)
    p = actor.agent("run", "--attempts", "8", "-s", "a", "--", "sh", "-c", SCRIPT, cwd=repo,
                    input="typed on stdin\n")
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 0, p.stderr
    assert "out of" not in p.stdout + p.stderr  # the agents' output went to their logs
    bases = {actor.git("rev-parse", f"refs/agent-base/a.{i}", cwd=repo).strip()
             for i in range(1, 9)}
    assert len(bases) == 1  # the same base commit for all eight
    base = bases.pop()
    assert actor.git("show", f"{base}:untracked.txt", cwd=repo) == "mine\n"
    assert actor.git("show", f"{base}:README.md", cwd=repo) == "edited, not committed\n"
    for i in range(1, 9):
        tip = actor.git("rev-parse", f"agent/a.{i}", cwd=repo).strip()
        assert actor.git("rev-parse", f"{tip}^", cwd=repo).strip() == base
        assert actor.git("show", f"{tip}:who.txt", cwd=repo) == f"a.{i}\nmine\n"
        log = next(_state(actor).glob(f"*/sessions/a.{i}/attempt.log")).read_text()
        assert f"out of a.{i}\n" in log and f"err of a.{i}\n" in log
        assert "stdin is empty\n" in log and "typed on stdin" not in log
        assert f"[a.{i}] exit 0: agent/a.{i} " in p.stderr
    assert "8 of 8 attempts succeeded" in p.stderr
    # the user's worktree, index and HEAD are as they were
    assert actor.git("status", "--porcelain", cwd=repo) == " M README.md\n?? untracked.txt\n"
    rows = [ln.split() for ln in actor.agent("list", cwd=repo).stdout.splitlines()[1:]]
    assert [r[:4] for r in rows] == [[f"a.{i}", f"agent/a.{i}", "idle", "local"]
                                     for i in range(1, 9)]


def test_attempts_exit_status_is_the_first_failed_one_each_said(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "--attempts", "3", "-s", "f", "--", "sh", "-c",
                    'echo x > "$GIT_AGENT_SESSION"; [ "$GIT_AGENT_SESSION" = f.1 ] || exit 4',
                    cwd=repo)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 4, p.stderr
    assert "[f.1] exit 0" in p.stderr and "[f.2] exit 4" in p.stderr and "[f.3] exit 4" in p.stderr
    assert "1 of 3 attempts succeeded; failed: f.2 (4), f.3 (4)" in p.stderr
    for i in (1, 2, 3):  # a failed attempt's work is captured all the same
        assert actor.git("show", f"agent/f.{i}:f.{i}", cwd=repo) == "x\n"


@pytest.mark.parametrize("args,why", [
    (["--attempts", "17"], "not in the range 1<=x<=16"),
    (["--attempts", "0"], "not in the range 1<=x<=16"),
    (["--attempts", "2", "-s", "ends."], "invalid session name 'ends..1'"),
    (["--attempts", "2", "-s", "taken"], "session 'taken.1' exists already"),
    (["--attempts", "2", "-s", "deep"], "session 'deep.2/x' exists already"),
    # refs git cannot create beside a ref of yours (no session): said as such
    (["--attempts", "2", "-s", "clash"], "session 'clash.1' cannot be made: git cannot create "
     "refs/heads/agent/clash.1 while refs/heads/agent/clash.1/x exists"),
    (["--attempts", "2", "-s", "base"], "session 'base.2' cannot be made: git cannot create "
     "refs/agent-base/base.2 while refs/agent-base/base.2/x exists"),
    (["--attempts", "2", "-s", "up/q"], "session 'up/q.1' cannot be made: git cannot create "
     "refs/heads/agent/up/q.1 while refs/heads/agent/up exists"),
])
def test_attempts_refuse_bad_counts_and_taken_names_before_anything_starts(
        actor: Actor, args: list[str], why: str) -> None:
    repo = actor.make_repo()
    for s in ("taken.1", "deep.2/x"):
        assert actor.agent("run", "-s", s, "--", "true", cwd=repo).returncode == 0
    for ref in ("refs/heads/agent/clash.1/x", "refs/agent-base/base.2/x", "refs/heads/agent/up"):
        actor.git("update-ref", ref, "HEAD", cwd=repo)
    before = (_refs(actor, repo, "refs/"), sorted(os.listdir(next(_state(actor).glob(
        "*/sessions")))))
    p = actor.agent("run", *args, "--", "sh", "-c", "echo x > new", cwd=repo)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and why in p.stderr, p.stderr
    after = (_refs(actor, repo, "refs/"), sorted(os.listdir(next(_state(actor).glob(
        "*/sessions")))))
    assert after == before  # no session, no base ref, no branch made


def test_attempts_of_a_missing_command_leave_nothing(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "--attempts", "2", "-s", "nc", "--", "no-such-agent", cwd=repo)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 127, p.stderr
    assert "[nc.1] exit 127: no-such-agent: not found inside the sandbox" in p.stderr
    assert _refs(actor, repo, "refs/agent-base/") == _refs(actor, repo, "refs/heads/agent/") == ""
    assert "no sessions" in actor.agent("list", cwd=repo).stderr
    assert not list(_state(actor).glob("*/sessions/nc.*"))


AGENT = "import time; open('kept.txt', 'w').write('kept\\n'); time.sleep(1000)"


@pytest.mark.parametrize("how", ["^C to the terminal's group", "SIGTERM to git agent"])
def test_attempts_are_stopped_together_and_each_is_captured(actor: Actor, how: str) -> None:
    repo = actor.make_repo()
    argv = ["git-agent", "run", "--attempts", "3", "-s", "c", "--", "/usr/bin/python3", "-c",
            AGENT]
    user = subprocess.Popen(actor._argv(argv), cwd=repo, env=actor.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        # all three agents at work at once: they run in parallel
        while len(list(_state(actor).glob("*/sessions/c.*/upper/kept.txt"))) < 3:
            assert user.poll() is None and time.monotonic() < deadline, user.communicate()
            time.sleep(0.05)
        if how.startswith("^C"):
            os.killpg(user.pid, signal.SIGINT)
        else:
            os.kill(user.pid, signal.SIGTERM)
        _out, err = user.communicate(timeout=60)
    finally:
        if user.poll() is None:
            os.killpg(user.pid, signal.SIGKILL)
    text = err.decode()
    assert "Traceback" not in text, text
    assert user.returncode == 130, text
    assert "every attempt was stopped" in text
    for i in (1, 2, 3):
        assert actor.git("show", f"agent/c.{i}:kept.txt", cwd=repo) == "kept\n", text


def test_attempts_sandboxes_die_with_the_process_the_user_started(actor: Actor) -> None:
    """Promise "Lifetime" (docs/security.md): a kill -9 of `git-agent run --attempts` leaves no
    agent running (each forked attempt ties its sandbox to it)."""
    from tests.sandbox.test_lifetime import _session_processes

    repo = actor.make_repo()
    marker = f"ga-attempts-{os.getpid()}-{time.monotonic_ns()}"
    argv = ["git-agent", "run", "--attempts", "2", "-s", "k", "--", "/usr/bin/python3", "-c",
            AGENT, marker]
    user = subprocess.Popen(actor._argv(argv), cwd=repo, env=actor.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(_state(actor).glob("*/sessions/k.*/upper/kept.txt"))) < 2:
            assert user.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(user.pid, signal.SIGKILL)
        user.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _session_processes(marker):
            assert time.monotonic() < deadline, _session_processes(marker)
            time.sleep(0.05)
    finally:
        for line in _session_processes(marker):
            os.kill(int(line.split()[0]), signal.SIGKILL)
    for i in (1, 2):  # the work is still there: review captures it
        assert actor.agent("review", f"k.{i}", "--stat", cwd=repo).returncode == 0
        assert actor.git("show", f"agent/k.{i}:kept.txt", cwd=repo) == "kept\n"
