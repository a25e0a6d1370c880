"""`run --on`, `fetch` and `remote doctor` on a real Podman engine (tests/remote/podman_env.py),
rootful as root and rootless as the unprivileged user: a container per run from the worker
image, the session's state on its volume, the same bwrap sandbox inside, or nothing."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Actor
from tests.helpers import cmdlines
from tests.remote.podman_env import Engine, podman_engine

__all__ = ["podman_engine"]


@pytest.fixture
def pod(actor: Actor, podman_engine: Engine) -> Iterator[Path]:
    """actor's repository with the remote `pod`; its volumes removed afterwards."""
    repo = podman_engine.setup(actor)
    try:
        yield repo
    finally:
        rid = actor.run(["git", "rev-parse", "-q", "--verify", "refs/agent-id"],
                        cwd=repo).stdout.strip()
        if rid:
            vols = podman_engine.podman(actor, "volume", "ls", "-q", "--filter",
                                        f"label=io.git-agent.repo={rid}").stdout.split()
            if vols:
                podman_engine.podman(actor, "volume", "rm", "-f", *vols)


def run_on(actor: Actor, repo: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    p = actor.agent("run", "--on", "pod", "-s", "s", "--", *cmd, cwd=repo)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_remote_doctor_passes_in_the_container(actor: Actor, podman_engine: Engine,
                                               pod: Path) -> None:
    p = actor.agent("remote", "doctor", "pod", cwd=pod)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "every check passed" in p.stderr and "FAIL" not in p.stdout
    assert "ok    user namespaces" in p.stdout and "ok    overlayfs" in p.stdout, p.stdout
    assert podman_engine.leftovers(actor) == []  # doctor's container and volume are gone
    vols = podman_engine.podman(actor, "volume", "ls", "-q").stdout.split()
    assert not [v for v in vols if v.startswith("git-agent-doctor-")]


def test_podman_round_trip_with_untracked_files(actor: Actor, podman_engine: Engine,
                                                pod: Path) -> None:
    (pod / "untracked.txt").write_text("mine\n")
    (pod / "dir").mkdir()
    (pod / "dir" / "new.txt").write_text("also untracked\n")
    actor.own(pod)
    p = run_on(actor, pod, "sh", "-c", "echo x >> untracked.txt; cat dir/new.txt > copy.txt")
    assert p.returncode == 0, p.stderr
    assert "fetched from pod" in p.stderr
    base = actor.git("rev-parse", "refs/agent-base/s", cwd=pod).strip()
    tip = actor.git("rev-parse", "agent/s", cwd=pod).strip()
    assert actor.git("rev-parse", f"{tip}^", cwd=pod).strip() == base
    assert actor.git("show", f"{tip}:untracked.txt", cwd=pod) == "mine\nx\n"
    assert actor.git("show", f"{tip}:copy.txt", cwd=pod) == "also untracked\n"
    assert (pod / "untracked.txt").read_text() == "mine\n"  # only apply changes the worktree
    a = actor.agent("apply", "s", cwd=pod)
    assert a.returncode == 0, a.stderr
    assert (pod / "untracked.txt").read_text() == "mine\nx\n"
    row = [ln.split() for ln in actor.agent("list", cwd=pod).stdout.splitlines()][1]
    assert row[:5] == ["s", "agent/s", "idle", "remote", "pod"], row
    # the run's container is gone; its volume (the session's state) stays
    assert podman_engine.leftovers(actor) == []


def test_podman_incremental_run_and_fetch(actor: Actor, podman_engine: Engine,
                                          pod: Path) -> None:
    assert run_on(actor, pod, "sh", "-c", "echo one > a.txt").returncode == 0
    first = actor.git("rev-parse", "agent/s", cwd=pod).strip()
    (pod / "mine.txt").write_text("edited here meanwhile\n")
    actor.own(pod)
    # a new container: the agent's earlier a.txt comes from the session's volume
    p = run_on(actor, pod, "sh", "-c", "cat mine.txt > b.txt; cat a.txt >> b.txt")
    assert p.returncode == 0, p.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=pod).strip()
    assert tip != first
    assert actor.git("show", f"{tip}:b.txt", cwd=pod) == "edited here meanwhile\none\n"
    actor.git("update-ref", "-d", "refs/heads/agent/s", cwd=pod)  # lost here
    p = actor.agent("fetch", "s", cwd=pod)
    assert p.returncode == 0 and "fetched from pod" in p.stderr, p.stderr
    assert actor.git("rev-parse", "agent/s", cwd=pod).strip() == tip
    assert podman_engine.leftovers(actor) == []


def test_a_container_that_cannot_run_bwrap_never_runs_the_agent(
        actor: Actor, podman_engine: Engine, pod: Path) -> None:
    """Fail closed: an engine that leaves /proc masked (here a podman that drops the unmask
    option, as a pod without procMount: Unmasked would) fails doctor, and run --on refuses:
    the agent never runs there and nothing comes back."""
    shim = actor.base / "shim"
    shim.mkdir()
    (shim / "podman").write_text(
        '#!/bin/sh\nfor a; do shift; [ "$a" = "unmask=/proc/*" ] && a="label=disable"; '
        'set -- "$@" "$a"; done\nexec /usr/bin/podman "$@"\n')
    (shim / "podman").chmod(0o755)
    actor.own(shim)
    env = {"PATH": f"{shim}:{actor.env['PATH']}"}
    p = actor.agent("remote", "doctor", "pod", cwd=pod, env=env)
    assert p.returncode == 1 and "FAIL" in p.stdout and "proc" in p.stdout, p.stdout + p.stderr
    p = actor.agent("run", "--on", "pod", "-s", "s", "--", "sh", "-c", "echo ran > ran.txt",
                    cwd=pod, env=env)
    assert p.returncode != 0 and "doctor fails" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert actor.run(["git", "rev-parse", "-q", "--verify", "agent/s"], cwd=pod).returncode != 0
    assert podman_engine.leftovers(actor) == []


def test_no_secret_of_yours_in_any_cmdline_in_the_container(
        actor: Actor, podman_engine: Engine, pod: Path) -> None:
    """Promise (docs/remote.md): API keys travel in the request, never in argv: while the agent
    runs in the container, no process's /proc/PID/cmdline holds the key's value (the host's
    /proc: the container's processes and ours)."""
    secret = "sk-" + os.urandom(12).hex()
    env = {"GA_TEST_KEY": secret}
    argv = ["git", "agent", "run", "--on", "pod", "-s", "s", "--pass-env", "GA_TEST_KEY", "--",
            "sh", "-c", 'printf %s "$GA_TEST_KEY" > got.txt; read line']
    p = subprocess.Popen(actor._with_env(argv, env), cwd=pod, env={**actor.env, **env},
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        running = False
        while not running:
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the agent never started in the container"
            cmds = cmdlines().values()
            running = any(c.startswith(b"sh\0-c\0printf") for c in cmds)
            time.sleep(0.02)
        seen = [c.decode(errors="replace") for c in cmdlines().values() if secret.encode() in c]
        inside = podman_engine.podman(actor, "exec", _container(podman_engine, actor), "sh", "-c",
                                      "cat /proc/[0-9]*/cmdline")
        assert inside.returncode == 0 and "git-agent" in inside.stdout, inside.stderr
        assert secret not in inside.stdout
    finally:
        out, err = p.communicate(b"\n", timeout=120)
    assert p.returncode == 0, err
    assert seen == []
    tip = actor.git("rev-parse", "agent/s", cwd=pod).strip()
    assert actor.git("show", f"{tip}:got.txt", cwd=pod) == secret  # it did travel


def _container(engine: Engine, actor: Actor) -> str:
    names = engine.leftovers(actor)
    assert len(names) == 1, names
    return names[0]


def test_podman_gives_the_agent_a_terminal_when_you_have_one(actor: Actor,
                                                             podman_engine: Engine,
                                                             pod: Path) -> None:
    """Interactive: on a terminal the run is `podman exec -t` (the agent sees a tty, and no
    key of yours is podman's detach sequence); the bundles travel on their own execs."""
    probe = "if [ -t 0 ]; then echo tty; else echo none; fi > tty.txt"
    cmd = f"git agent run --on pod -s s -- sh -c '{probe}; printf \"\\033[2Jgarbage\\n\"'"
    p = actor.run(["script", "-qec", cmd, "/dev/null"], cwd=pod)
    assert p.returncode == 0, p.stdout + p.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=pod).strip()
    assert actor.git("show", f"{tip}:tty.txt", cwd=pod) == "tty\n"
    assert "garbage" in p.stdout
    assert run_on(actor, pod, "sh", "-c", probe).returncode == 0  # not a terminal: no pty
    tip = actor.git("rev-parse", "agent/s", cwd=pod).strip()
    assert actor.git("show", f"{tip}:tty.txt", cwd=pod) == "none\n"


def test_a_missing_image_is_one_line_and_leaves_nothing(actor: Actor, podman_engine: Engine,
                                                        pod: Path) -> None:
    actor.git("config", "agent.remote.pod.image", "localhost/git-agent-no-such:1", cwd=pod)
    for args in (("remote", "doctor", "pod"), ("run", "--on", "pod", "-s", "s", "--", "true")):
        p = actor.agent(*args, cwd=pod)
        assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
        assert "no image localhost/git-agent-no-such:1" in p.stderr, p.stderr
    assert actor.git("for-each-ref", "refs/agent-base/", "refs/heads/agent/", cwd=pod) == ""
    assert "no sessions" in actor.agent("list", cwd=pod).stderr
    assert podman_engine.leftovers(actor) == []
    rid = actor.git("rev-parse", "refs/agent-id", cwd=pod).strip()
    assert podman_engine.podman(actor, "volume", "ls", "-q", "--filter",
                                f"label=io.git-agent.repo={rid}").stdout == ""
    actor.git("config", "agent.remote.pod.image", "-oops", cwd=pod)
    p = actor.agent("remote", "doctor", "pod", cwd=pod)
    assert p.returncode != 0 and "bad agent.remote.pod.image" in p.stderr, p.stderr


def test_a_container_left_by_a_killed_run_is_replaced(actor: Actor, podman_engine: Engine,
                                                      pod: Path) -> None:
    """A run killed before it removed its container leaves one of the session's name; the next
    run removes it and goes on (the session's state is on the volume, not in it)."""
    from git_agent.remote import podman

    assert run_on(actor, pod, "sh", "-c", "echo one > a.txt").returncode == 0
    rid = actor.git("rev-parse", "refs/agent-id", cwd=pod).strip()
    name, _ = podman.names(rid, "s")
    stray = podman_engine.podman(actor, "run", "-d", "--rm", "--network=none", "--name", name,
                                 "--label", "io.git-agent.worker=1", podman_engine.image,
                                 "sleep", "infinity")
    assert stray.returncode == 0, stray.stderr
    p = run_on(actor, pod, "sh", "-c", "cat a.txt > b.txt")
    assert p.returncode == 0, p.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=pod).strip()
    assert actor.git("show", f"{tip}:b.txt", cwd=pod) == "one\n"
    assert podman_engine.leftovers(actor) == []
