"""podman:// with the remote features of main: --detach and attach refused (the container ends
with run --on), a run whose exec ends while the agent runs stopped with its container and
captured by the next fetch, drop removing the session's volume, --attempts with --on (real
podman, as root and as the unprivileged user; docs/remote.md, "Podman and the runs that outlive
their connection")."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import TEST_USER, Actor
from tests.helpers import cmdlines, procs
from tests.remote.podman_env import Engine, podman_engine
from tests.remote.test_podman import pod, run_on

__all__ = ["podman_engine", "pod"]


def _volumes(engine: Engine, actor: Actor, repo: Path) -> list[str]:
    rid = actor.run(["git", "rev-parse", "-q", "--verify", "refs/agent-id"],
                    cwd=repo).stdout.strip()
    if not rid:
        return []
    p = engine.podman(actor, "volume", "ls", "-q", "--filter", f"label=io.git-agent.repo={rid}")
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def test_podman_detach_and_attach_are_refused_in_one_line(actor: Actor, podman_engine: Engine,
                                                          pod: Path) -> None:
    p = actor.agent("run", "--on", "pod", "--detach", "-s", "s", "--", "true", cwd=pod)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "--detach: not on pod (podman://)" in p.stderr and "Traceback" not in p.stderr
    # nothing made: no session, no ref, no container, no volume
    assert actor.git("for-each-ref", "refs/agent-base/", "refs/heads/agent/", cwd=pod) == ""
    assert "no sessions" in actor.agent("list", cwd=pod).stderr
    assert podman_engine.leftovers(actor) == [] and _volumes(podman_engine, actor, pod) == []
    assert run_on(actor, pod, "sh", "-c", "echo one > a.txt").returncode == 0
    p = actor.agent("attach", "s", cwd=pod)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "nothing to attach to" in p.stderr and "Traceback" not in p.stderr
    assert podman_engine.leftovers(actor) == []


def test_podman_drop_removes_the_sessions_volume(actor: Actor, podman_engine: Engine,
                                                 pod: Path) -> None:
    assert run_on(actor, pod, "sh", "-c", "echo one > a.txt").returncode == 0
    assert len(_volumes(podman_engine, actor, pod)) == 1
    p = actor.agent("drop", "--force", "s", cwd=pod)
    assert p.returncode == 0 and "note:" not in p.stderr, p.stderr
    assert _volumes(podman_engine, actor, pod) == []
    assert podman_engine.leftovers(actor) == []
    assert actor.run(["git", "rev-parse", "-q", "--verify", "agent/s"], cwd=pod).returncode != 0


def test_podman_run_whose_exec_ends_is_hung_up_and_captured(
        actor: Actor, podman_engine: Engine, pod: Path) -> None:
    """The run's `podman exec` killed while the agent runs: the agent is hung up (SIGHUP) in the
    container, its `git agent run` captures what it wrote, run --on brings that back and says so
    in one line; no container is left (the agent never runs on unseen)."""
    argv = ["git", "agent", "run", "--on", "pod", "-s", "s", "--", "sh", "-c",
            "echo started > s.txt; sleep 600"]
    p = subprocess.Popen(actor._with_env(argv, {}), cwd=pod, env=actor.env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(c.startswith(b"sh\0-c\0echo started") for c in cmdlines().values()):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the agent never started in the container"
            time.sleep(0.05)
        time.sleep(0.5)  # s.txt written
        run_exec = procs(_is_run_exec)
        assert len(run_exec) == 1, run_exec
        os.kill(run_exec[0], signal.SIGKILL)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode != 0, err
    assert "it was hung up (SIGHUP)" in err and "fetched from pod" in err, err
    assert "Traceback" not in err
    assert podman_engine.leftovers(actor) == []
    assert not any(c.startswith(b"sh\0-c\0echo started") for c in cmdlines().values())
    tip = actor.git("rev-parse", "agent/s", cwd=pod).strip()
    assert actor.git("show", f"{tip}:s.txt", cwd=pod) == "started\n"
    row = [ln.split() for ln in actor.agent("list", cwd=pod).stdout.splitlines()][1]
    assert row[:3] == ["s", "agent/s", "idle"], row


def _is_run_exec(cmdline: bytes) -> bool:
    cmd = cmdline.split(b"\0")
    return (bool(cmd) and cmd[0].endswith(b"podman") and b"exec" in cmd
            and b"--ticket" in cmd)


def _subids(user: str) -> int:
    rows = [ln.split(":") for ln in Path("/etc/subuid").read_text().splitlines()]
    return sum(int(r[2]) for r in rows if len(r) == 3 and r[0] == user)


def test_podman_attempts_each_in_its_own_container(actor: Actor, podman_engine: Engine,
                                                   pod: Path) -> None:
    """--attempts 2 --on pod: two sessions, each its own container and volume, at once. Rootless
    --userns=auto needs 65536 subordinate ids per container: with Debian's default range (one
    container's worth) the second is refused by podman in one line and leaves nothing, while
    the first goes on (docs/remote.md, "Podman and the runs that outlive their connection")."""
    p = actor.agent("run", "--on", "pod", "--attempts", "2", "-s", "a", "--", "sh", "-c",
                    "echo tried > t.txt", cwd=pod)
    assert "Traceback" not in p.stderr, p.stderr
    ok = ["a.1", "a.2"]
    if not actor.is_root and _subids(TEST_USER) < 2 * 65536:
        assert p.returncode == 1 and "1 of 2 attempts succeeded" in p.stderr, p.stderr
        bad = [n for n in ok if f"[{n}] exit 1: the local podman: Error: creating container "
               "storage: could not find enough available IDs" in p.stderr]
        assert len(bad) == 1, p.stderr
        ok.remove(bad[0])
        assert actor.git("for-each-ref", f"refs/agent-base/{bad[0]}", cwd=pod) == ""
    else:
        assert p.returncode == 0, p.stderr
    for name in ok:
        tip = actor.git("rev-parse", f"agent/{name}", cwd=pod).strip()
        assert actor.git("show", f"{tip}:t.txt", cwd=pod) == "tried\n"
    assert len(_volumes(podman_engine, actor, pod)) == len(ok)  # a volume per session
    assert podman_engine.leftovers(actor) == []
