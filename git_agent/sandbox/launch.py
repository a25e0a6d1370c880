"""Start bwrap with a plan, pass the agent's terminal through, and return its real exit status."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from git_agent import proc
from git_agent.errors import GitAgentError, SandboxUnavailable
from git_agent.record import Record
from git_agent.sandbox import lifetime
from git_agent.sandbox.mounts import MountPlan, helper_environ
from git_agent.ui import HELD_SIGNALS


class Outcome(Record):
    __slots__ = ("exit_status", "started")

    def __init__(self, exit_status: int, started: bool):
        self.exit_status = exit_status  # the agent's, 128+N when it died from signal N
        self.started = started  # False when bwrap failed before starting the agent


class Hooks(Record):
    """Optional pieces the hardening adds: a seccomp program, Landlock (a preexec step).
    The network needs none: sandbox/network.py sets it up in the mount plan."""

    __slots__ = ("seccomp", "preexec")

    def __init__(self, seccomp: bytes | None = None,
                 preexec: Callable[[], None] | None = None):
        self.seccomp = seccomp
        self.preexec = preexec


# The terminal sends ^C, ^\\ and hang-up to its whole foreground process group: bwrap too. If
# bwrap died of them, --die-with-parent would SIGKILL the agent, which may want to handle them
# (aider stops a reply on ^C). So bwrap ignores them, and the agent starts through
# `env --default-signal` (GNU coreutils >= 8.31), which gives it the default handling back.
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)
ENV = "/usr/bin/env"


def default_signal_prefix(*, cache: Path | None = None) -> list[str]:
    """The command prefix that restores TERMINAL_SIGNALS inside, or [] when env cannot."""

    def probe() -> bool:
        try:
            return (
                subprocess.run(
                    [ENV, "--default-signal=INT,QUIT,HUP", "true"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ).returncode
                == 0
            )
        except OSError:
            return False

    ok = proc.probe_cached(Path(ENV), cache, probe) if os.path.exists(ENV) else False
    return [ENV, "--default-signal=INT,QUIT,HUP", "--"] if ok is True else []


def _preexec(extra: Callable[[], None] | None, ignore_terminal: bool) -> Callable[[], None]:
    def run() -> None:
        if ignore_terminal:
            for s in TERMINAL_SIGNALS:
                signal.signal(s, signal.SIG_IGN)
        if extra is not None:
            extra()

    return run


def _agent_pids(init_pid: int) -> list[int]:
    """The host pids of the sandbox init's children (the agent), to hand signals to."""
    pids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{init_pid}/task"):
            with open(f"/proc/{init_pid}/task/{task}/children") as f:
                pids += [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        pass
    return pids


def signal_child(parent: int, pid: int, signum: int) -> bool:
    """Send signum to pid if it is still a child of parent; True when sent.

    The pid was read from /proc, and may have been reused since: a pidfd pins whichever
    process has it now, then its parent is checked, and the signal goes through the pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False  # gone
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            ppid = int(f.read().rpartition(b")")[2].split()[1])  # after "pid (comm) state"
        if ppid != parent:
            return False
        signal.pidfd_send_signal(fd, signum)
        return True
    except (OSError, ValueError, IndexError):
        return False
    finally:
        os.close(fd)


def _read_json_docs(data: bytes) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    dec = json.JSONDecoder()
    text = data.decode(errors="replace")
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return docs
        try:
            obj, i = dec.raw_decode(text, i)
        except ValueError:
            return docs
        if isinstance(obj, dict):
            docs.append(obj)


def _pipe_with(data: bytes) -> int:
    """A readable fd holding data, at its start (bwrap reads --seccomp and --args to EOF).

    A memfd, not a pipe: the options of a large plan do not fit a pipe's buffer."""
    fd = os.memfd_create("git-agent", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)  # a memfd takes it all at once
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Fds(Record):
    """The descriptors one launch hands bwrap (`give`) and keeps for itself."""

    __slots__ = ("give", "status")

    def __init__(self, give: list[int], status: _Status):
        self.give = give  # closed in git agent once bwrap has them
        self.status = status  # --json-status-fd, read end

    def close_ours(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.status.fd)


def _descriptors(hooks: Hooks) -> tuple[_Fds, list[str]]:
    """The pipes of one launch, and the bwrap options naming them."""
    status_r, status_w = os.pipe()
    give = [status_w]
    extra = ["--json-status-fd", str(status_w)]
    if hooks.seccomp is not None:
        seccomp_fd = _pipe_with(hooks.seccomp)
        give.append(seccomp_fd)
        extra += ["--seccomp", str(seccomp_fd)]
    return _Fds(give, _Status(status_r)), extra


def command_line(plan: MountPlan, bwrap: Path) -> tuple[list[str], int]:
    """bwrap's argv and the fd it reads its options from (--args): the command line holds the
    command and no option, so no /proc/PID/cmdline inside shows a --setenv value."""
    fd = _pipe_with(b"".join(os.fsencode(a) + b"\0" for a in plan.options()))
    return [os.fspath(bwrap), "--args", str(fd), "--", *plan.command], fd


def _start(argv: list[str], fds: _Fds, hooks: Hooks, *, ignore_terminal: bool,
           bwrap: Path) -> subprocess.Popen[bytes]:
    """Start bwrap with nothing of git agent's environment (mounts.helper_environ)."""
    try:
        child = subprocess.Popen(
            argv,
            pass_fds=fds.give,
            preexec_fn=_preexec(hooks.preexec, ignore_terminal),
            close_fds=True,
            env=helper_environ(),
        )
    except (subprocess.SubprocessError, OSError) as e:
        fds.close_ours()
        why = (
            "could not apply the Landlock scopes"  # the preexec step failed in the child
            if isinstance(e, subprocess.SubprocessError)
            else f"could not start {bwrap}"
        )
        raise SandboxUnavailable(f"{why} ({e}); see `git agent doctor`") from e
    finally:
        for fd in fds.give:
            os.close(fd)
    return child


@contextlib.contextmanager
def _signals_to_agent(child: Callable[[], subprocess.Popen[bytes] | None],
                      status: _Status) -> Iterator[None]:
    """While the agent runs: SIGTERM, SIGHUP (any of ui.HELD_SIGNALS) to git agent go to the
    agent, which may exit cleanly (then capture); ^C and ^\\ reach it through the terminal,
    and we wait for it. The handlers of before come back after: run.py holds signals from
    then on (ui.uninterrupted) until the capture is done."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        c = child()
        if c is None or c.poll() is not None:
            return
        init = status.child_pid()
        if init is not None and (agents := _agent_pids(init)):
            for agent in agents:
                signal_child(init, agent, signum)
        else:
            c.send_signal(signum)

    def ignore(_signum: int, _frame: FrameType | None) -> None:
        pass

    handlers = {signal.SIGINT: ignore, signal.SIGQUIT: ignore,
                signal.SIGTERM: forward, signal.SIGHUP: forward}
    for other in HELD_SIGNALS:  # kill -USR1 ... too: to the agent, not held until it exits
        if other not in handlers and signal.getsignal(other) != signal.SIG_IGN:
            handlers[other] = forward
    old = {s: signal.signal(s, h) for s, h in handlers.items()}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _outcome(child: subprocess.Popen[bytes], status: _Status) -> Outcome:
    """The agent's exit status from bwrap's --json-status-fd, or why it never ran."""
    docs = status.read_all()
    code = next((d["exit-code"] for d in docs if isinstance(d.get("exit-code"), int)), None)
    if code is None and child.returncode < 0 and any("child-pid" in d for d in docs):
        # bwrap itself was killed (e.g. SIGKILL from outside): the agent died with it
        return Outcome(exit_status=128 - child.returncode, started=True)
    if code is None:
        return Outcome(exit_status=child.returncode if child.returncode > 0 else 1, started=False)
    assert isinstance(code, int)
    return Outcome(exit_status=code, started=True)


def run(
    plan: MountPlan,
    *,
    bwrap: Path,
    hooks: Hooks,
    probe_cache: Path | None = None,
    started: Callable[[], None] | None = None,
) -> Outcome:
    """Run the plan; `started` is called once bwrap runs (work that must not delay the agent).

    The sandbox ends with the process the user started (lifetime.owner): when that dies,
    the sandbox is killed and run returns as if the agent had been killed."""
    if lifetime.owner_gone():
        raise GitAgentError("the git that started git agent has ended; the agent was not started")
    prefix = default_signal_prefix(cache=probe_cache)
    fds, extra = _descriptors(hooks)
    plan = plan.but(command=[*prefix, *plan.command], extra=[*plan.extra, *extra])
    try:
        argv, args_fd = command_line(plan, bwrap)
    except BaseException:
        fds.close_ours()
        for fd in fds.give:
            os.close(fd)
        raise
    fds = _Fds([*fds.give, args_fd], fds.status)
    box: list[subprocess.Popen[bytes]] = []
    with _signals_to_agent(lambda: box[0] if box else None, fds.status):
        child = _start(argv, fds, hooks, ignore_terminal=bool(prefix), bwrap=bwrap)
        box.append(child)
        if started is not None:
            started()
        _wait(child, lifetime.owner())
    return _outcome(child, fds.status)


def _wait(child: subprocess.Popen[bytes], owner: int | None = None) -> None:
    """child.wait(), woken by any signal git agent gets. The kernel may give a signal to any
    thread (the base snapshot's too); Python runs its handler in the main thread only, between
    calls, and a waitpid blocked there would hold forward() until the agent had exited.

    owner: a pidfd of the process the user started (lifetime.owner); when it ends, bwrap is
    killed, and with it (--die-with-parent) the whole sandbox: nothing outlives a `kill -9`."""
    import select

    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    try:
        pidfd = os.pidfd_open(child.pid)
    except OSError:  # gone already
        pidfd = None
    try:
        poller = select.poll()
        poller.register(r, select.POLLIN)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        if owner is not None:
            poller.register(owner, select.POLLIN)
        while child.poll() is None:
            # bwrap exited, the owner did, or a signal came: its handler runs right after this
            # (without a pidfd, kernels < 5.3, look again every 0.1 s)
            for fd, _ in poller.poll(None if pidfd is not None else 100):
                if fd == owner:
                    child.kill()
                    poller.unregister(owner)
            with contextlib.suppress(BlockingIOError):
                os.read(r, 512)
    finally:
        signal.set_wakeup_fd(old)
        for end in (r, w, pidfd):
            if end is not None:
                os.close(end)
    child.wait()


class _Status:
    """bwrap's --json-status-fd: child-pid when it starts, exit-code when the agent exits."""

    def __init__(self, fd: int):
        self.fd = fd
        self.data = b""

    def child_pid(self) -> int | None:
        """The sandbox init's host pid, from what bwrap wrote so far (never blocks)."""
        import fcntl

        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        try:
            self.data += os.read(self.fd, 65536)
        except OSError:
            pass
        finally:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, flags)
        pid = next((d.get("child-pid") for d in _read_json_docs(self.data)), None)
        return pid if isinstance(pid, int) else None

    def read_all(self) -> list[dict[str, object]]:
        with os.fdopen(self.fd, "rb") as f:
            self.data += f.read()
        return _read_json_docs(self.data)

