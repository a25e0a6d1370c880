"""Runs on a remote that outlive their connection, through the real sshd on loopback
(tests/remote/conftest.py), as root and as an unprivileged user: `run --on --detach`, `attach`
(and its detach key), the connection lost mid-run (ssh client or master killed), the remote run
killed mid-run; git itself is the oracle of every local ref, the index and the worktree."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from git_agent.remote import relay
from tests.conftest import Actor
from tests.helpers import procs
from tests.remote.conftest import Sshd
from tests.remote.test_over_ssh import setup


def pwd_uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def wait_for(what: str, cond: Callable[[], object], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def agent_started(sshd: Sshd, marker: bytes) -> Callable[[], bool]:
    """The agent's shell runs on the remote (as the remote user), its script starting so."""
    uid = pwd_uid(sshd.user)
    return lambda: bool(procs(lambda c: c.startswith(b"sh\0-c\0" + marker), uid))


def local_state(actor: Actor, repo: Path) -> dict[str, str]:
    """What must not change but through apply: refs, the index, the worktree (git's word)."""
    return {"refs": actor.git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo),
            "index": actor.git("ls-files", "-s", cwd=repo),
            "status": actor.git("status", "--porcelain=v2", "--untracked-files=all", cwd=repo),
            "files": "\n".join(f"{p}:{p.read_bytes()!r}" for p in sorted(repo.rglob("*"))
                               if p.is_file() and ".git" not in p.parts)}


def detached(actor: Actor, repo: Path, *cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    p = actor.agent("run", "--on", "box", "--detach", "-s", "s", "--", *cmd, cwd=repo, **kw)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_detach_returns_at_once_and_attach_joins_and_fetches(actor: Actor, sshd: Sshd) -> None:
    """`run --on --detach` returns while the agent waits for input (so it cannot have waited
    for the agent); list shows it running there; fetch says it still runs; attach gives it its
    input and, when it ends, brings agent/s back."""
    repo = setup(actor, sshd)
    (repo / "untracked.txt").write_text("mine\n")
    actor.own(repo)
    p = detached(actor, repo, "sh", "-c", 'echo started > a.txt; read x; echo "$x" > got.txt')
    assert p.returncode == 0, p.stderr
    assert "git agent attach s" in p.stderr and "git agent fetch s" in p.stderr, p.stderr
    row = [ln.split() for ln in actor.agent("list", cwd=repo).stdout.splitlines()][1]
    assert row[:5] == ["s", "agent/s", "running", "remote", "box"], row
    wait_for("the agent waits for its input", agent_started(sshd, b"echo started"))
    f = actor.agent("fetch", "s", cwd=repo)
    assert f.returncode == 0 and "still runs on box" in f.stderr, f.stderr
    assert actor.run(["git", "rev-parse", "-q", "--verify", "agent/s"], cwd=repo).returncode != 0
    log = sshd.dir / "log"
    logins = log.read_text().count("Accepted publickey")
    a = actor.agent("attach", "s", cwd=repo, input="hello from attach\n")
    assert a.returncode == 0, a.stderr
    assert log.read_text().count("Accepted publickey") - logins == 1  # one login, three uses
    assert "fetched from box" in a.stderr, a.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("show", f"{tip}:got.txt", cwd=repo) == "hello from attach\n"
    assert actor.git("show", f"{tip}:untracked.txt", cwd=repo) == "mine\n"
    row = [ln.split() for ln in actor.agent("list", cwd=repo).stdout.splitlines()][1]
    assert row[2] == "idle", row
    # attach to a finished run: it says so and fetches (nothing new now)
    a = actor.agent("attach", "s", cwd=repo)
    assert a.returncode == 0 and "has finished on box" in a.stderr, a.stderr
    assert "nothing new from box" in a.stderr


def test_attach_on_a_terminal_and_its_detach_key(actor: Actor, sshd: Sshd) -> None:
    """On a terminal attach has a pty there; ^] leaves the run going (attach says how to come
    back), a second attach finds the agent still waiting and finishes it."""
    repo = setup(actor, sshd)
    probe = "if [ -t 0 ]; then echo tty; else echo none; fi > tty.txt"
    p = detached(actor, repo, "sh", "-c", f'{probe}; read x; echo "$x" > got.txt')
    assert p.returncode == 0, p.stderr
    wait_for("the agent waits for its input", agent_started(sshd, b"if [ -t 0 ]"))
    a = actor.run(["script", "-qec", "git agent attach s", "/dev/null"], cwd=repo, input="\x1d")
    assert a.returncode == 0, a.stdout + a.stderr
    assert "detached" in a.stdout and "git agent attach s" in a.stdout, a.stdout
    assert actor.run(["git", "rev-parse", "-q", "--verify", "agent/s"], cwd=repo).returncode != 0
    a = actor.agent("attach", "s", cwd=repo, input="second\n")
    assert a.returncode == 0 and "fetched from box" in a.stderr, a.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("show", f"{tip}:got.txt", cwd=repo) == "second\n"
    assert actor.git("show", f"{tip}:tty.txt", cwd=repo) == "tty\n"  # a detached run has one


def test_the_detach_key_in_a_run_on_leaves_the_agent_running(actor: Actor,
                                                              sshd: Sshd) -> None:
    """A plain `run --on` on a terminal is attached the same way: ^] leaves the agent running
    there (run says how to come back, exit 0), nothing fetched until it ends."""
    repo = setup(actor, sshd)
    p = actor.run(["script", "-qec", "git agent run --on box -s s -- sh -c "
                   "'echo waiting; read x; echo \"$x\" > got.txt'", "/dev/null"],
                  cwd=repo, input="\x1d")
    assert p.returncode == 0, p.stdout
    assert "detached" in p.stdout and "git agent attach s" in p.stdout, p.stdout
    row = [ln.split() for ln in actor.agent("list", cwd=repo).stdout.splitlines()][1]
    assert row[2] == "running", row
    assert actor.run(["git", "rev-parse", "-q", "--verify", "agent/s"], cwd=repo).returncode != 0
    a = actor.agent("attach", "s", cwd=repo, input="later\n")
    assert a.returncode == 0 and "fetched from box" in a.stderr, a.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("show", f"{tip}:got.txt", cwd=repo) == "later\n"


def test_a_second_run_of_a_session_still_running_there_is_refused(actor: Actor,
                                                                  sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    assert detached(actor, repo, "sh", "-c", "echo waiting; read x").returncode == 0
    wait_for("the agent runs", agent_started(sshd, b"echo waiting"))
    p = actor.agent("run", "--on", "box", "-s", "s", "--", "true", cwd=repo)
    assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
    assert "still runs on this remote" in p.stderr and "git agent attach s" in p.stderr
    a = actor.agent("attach", "s", cwd=repo, input="\n")
    assert a.returncode == 0, a.stderr


def _ssh_of(actor: Actor, what: bytes) -> list[int]:
    return procs(lambda c: c.startswith(b"ssh\0") and what in c, actor.uid)


def _lose_connection(actor: Actor, sshd: Sshd, repo: Path,
                     victims: Callable[[], list[int]]) -> None:
    run = subprocess.Popen(actor._argv(["git", "agent", "run", "--on", "box", "-s", "s", "--",
                                        "sh", "-c", "echo started > a.txt; sleep 3; "
                                        "echo late > late.txt"]),
                           cwd=repo, env=actor.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for("the agent runs", agent_started(sshd, b"echo started"))
        before = local_state(actor, repo)  # the run's base and the repository's id are in
        pids = victims()
        assert pids, "nothing to kill"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    text = err.decode()
    assert run.returncode == 255 and "Traceback" not in text, text
    lost = [ln for ln in text.splitlines() if "attach s" in ln]
    assert len(lost) == 1 and "git agent fetch s" in lost[0] and "goes on" in lost[0], text
    now = local_state(actor, repo)
    assert now == before, "only the session's meta may change when the connection breaks"
    row = [ln.split() for ln in actor.agent("list", cwd=repo).stdout.splitlines()][1]
    assert row[2] == "running", row
    # the agent went on without us: fetch brings what it did once it ends
    def fetched() -> bool:
        f = actor.agent("fetch", "s", cwd=repo)
        assert f.returncode == 0 and "Traceback" not in f.stderr, f.stderr
        return "fetched from box" in f.stderr
    wait_for("agent/s fetched after the agent ended", fetched)
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("show", f"{tip}:late.txt", cwd=repo) == "late\n"
    assert actor.git("rev-parse", f"{tip}^", cwd=repo).strip() == \
        actor.git("rev-parse", "refs/agent-base/s", cwd=repo).strip()


def test_network_loss_the_ssh_client_killed_mid_run_then_fetch(actor: Actor,
                                                               sshd: Sshd) -> None:
    """Network loss (the run's ssh killed): the agent goes on there, run --on says in one line
    how to attach / fetch and exits 255, nothing local changes; fetch brings agent/s after."""
    _lose_connection(actor, sshd, setup(actor, sshd), lambda: _ssh_of(actor, b"--ticket"))


def test_network_loss_the_ssh_master_killed_mid_run_then_fetch(actor: Actor,
                                                               sshd: Sshd) -> None:
    """The whole login gone (the ControlMaster every channel rides on killed)."""
    _lose_connection(actor, sshd, setup(actor, sshd),
                     lambda: _ssh_of(actor, b"ControlMaster=yes"))


def test_the_remote_worker_killed_mid_run_the_agent_goes_on(actor: Actor,
                                                             sshd: Sshd) -> None:
    """The remote's end of the connection killed (the worker relaying the run's stdio, as
    sshd's session would die): the same as a lost connection, the agent goes on."""
    uid = pwd_uid(sshd.user)

    def worker() -> list[int]:  # not its holder, a fork of it (same cmdline, its own name)
        return [pid for pid in procs(lambda c: b"worker\0--ticket" in c, uid)
                if Path(f"/proc/{pid}/comm").read_text().strip() != relay.COMM]
    _lose_connection(actor, sshd, setup(actor, sshd), worker)


def test_detach_without_on_is_one_line(actor: Actor) -> None:
    repo = actor.make_repo("repo")
    p = actor.agent("run", "--detach", "--", "true", cwd=repo)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "--detach is for a run on a remote" in p.stderr
    assert actor.run(["git", "rev-parse", "-q", "--verify", "refs/agent-base/s"],
                     cwd=repo).returncode != 0


def _kill_remote(actor: Actor, sshd: Sshd, victims: Callable[[int], list[int]],
                 status: int, said: str, hangup: bool = False) -> None:
    repo = setup(actor, sshd)
    assert actor.agent("run", "--on", "box", "-s", "s", "--", "sh", "-c",
                       "echo one > one.txt", cwd=repo).returncode == 0
    (repo / "mine.txt").write_text("mine\n")
    actor.own(repo)
    run = subprocess.Popen(actor._argv(["git", "agent", "run", "--on", "box", "-s", "s", "--",
                                        "sh", "-c", "echo partial > p.txt; sleep 120"]),
                           cwd=repo, env=actor.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for("the agent runs", agent_started(sshd, b"echo partial"))
        before = local_state(actor, repo)
        pids = victims(pwd_uid(sshd.user))
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    text = err.decode()
    assert run.returncode == status and "Traceback" not in text, text
    assert said in text and "git agent fetch s" in text, text
    after = local_state(actor, repo)
    if hangup:  # the run got its SIGHUP and may have captured in time: agent/s is then that
        tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
        if f"refs/heads/agent/s {tip}" not in before["refs"]:
            assert actor.git("rev-parse", f"{tip}^", cwd=repo).strip() == \
                actor.git("rev-parse", "refs/agent-base/s", cwd=repo).strip()
        strip = {k: "\n".join(ln for ln in v.splitlines() if "refs/heads/agent/s" not in ln)
                 for k, v in before.items()}
        before, after = strip, {k: "\n".join(ln for ln in v.splitlines()
                                             if "refs/heads/agent/s" not in ln)
                                for k, v in after.items()}
    assert after == before
    assert actor.run(["git", "fsck", "--no-dangling"], cwd=repo).returncode == 0
    f = actor.agent("fetch", "s", cwd=repo)
    assert f.returncode == 0, f.stderr
    assert "fetched from box" in f.stderr or hangup and "nothing new" in f.stderr, f.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("show", f"{tip}:p.txt", cwd=repo) == "partial\n"
    assert actor.git("show", f"{tip}:mine.txt", cwd=repo) == "mine\n"


def test_the_remote_run_killed_mid_run_leaves_local_refs_intact(actor: Actor,
                                                                 sshd: Sshd) -> None:
    """The remote's `git agent run` SIGKILLed while its agent works: run --on says it was
    killed, agent/s, the base, your branches, index and worktree are as they were (git's word);
    fetch then captures what the agent left there and brings it back, checked."""
    _kill_remote(actor, sshd, lambda uid: procs(lambda c: b"git_agent\0run\0-s\0s\0" in c, uid),
                 137, "killed (signal 9)")


def test_the_remote_holder_killed_mid_run_leaves_local_refs_intact(actor: Actor,
                                                                    sshd: Sshd) -> None:
    """The holder of the run SIGKILLed: the run gets a SIGHUP (its pty's hangup, or
    PR_SET_PDEATHSIG with pipes), never goes on orphaned; your branches, index and worktree as
    they were; agent/s only what the run captured on its SIGHUP, through the checked import."""
    def holder(uid: int) -> list[int]:
        return [pid for pid in procs(lambda c: b"worker\0--ticket" in c, uid)
                if Path(f"/proc/{pid}/comm").read_text().strip() == relay.COMM]
    _kill_remote(actor, sshd, holder, 255, "killed (with the process that held it)",
                 hangup=True)


def test_no_secret_of_yours_in_any_remote_cmdline_of_a_detached_run(actor: Actor,
                                                                      sshd: Sshd) -> None:
    """Promise (docs/security.md): the rule of test_no_secret_of_yours_in_any_remote_cmdline
    holds for a detached run too: while it runs (the worker, its holder, the remote `git agent
    run`, the sandbox) and while you are attached to it, no /proc/*/cmdline holds the value of
    a --pass-env variable."""
    repo = setup(actor, sshd)
    secret = "sk-" + os.urandom(12).hex()
    env = {"GA_TEST_KEY": secret}
    p = actor.run(["git", "agent", "run", "--on", "box", "--detach", "-s", "s", "--pass-env",
                   "GA_TEST_KEY", "--", "sh", "-c",
                   'printf %s "$GA_TEST_KEY" > got.txt; echo waiting; read line'],
                  cwd=repo, env=env)
    assert p.returncode == 0, p.stderr
    wait_for("the agent runs", agent_started(sshd, b"printf %s"))
    assert procs(lambda c: secret.encode() in c) == []
    a = subprocess.Popen(actor._argv(["git", "agent", "attach", "s"]), cwd=repo, env=actor.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for("attached", lambda: _ssh_of(actor, b"--ticket"))
        assert procs(lambda c: secret.encode() in c) == []
    finally:
        out, err = a.communicate(b"\n", timeout=120)
    assert a.returncode == 0, err
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("show", f"{tip}:got.txt", cwd=repo) == secret  # it did travel
