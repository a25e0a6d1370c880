"""`run --attempts N`: the names S.1..S.N, and N runs forked at once from one process, each
with its stdin on /dev/null and its output in a log in its session folder (docs/remote.md,
"Attempts"). What one run is stays run's: this module is handed a function that does it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from git_agent import errors, ui
from git_agent.errors import UsageError
from git_agent.record import Record
from git_agent.repo import Worktree
from git_agent.session import identity, store
from git_agent.session.names import check_name
from git_agent.ui import say

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from typing import Any

MAX_ATTEMPTS = 16
LOG_NAME = "attempt.log"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def names(session: str, n: int) -> list[str]:
    """S.1..S.N, each a valid session name (S.1 is checked as a whole: `S` may be valid while
    `S.1` is not, e.g. an S ending in '.')."""
    if not 1 <= n <= MAX_ATTEMPTS:
        raise UsageError(f"--attempts takes 1 to {MAX_ATTEMPTS}, not {n}")
    return [check_name(f"{session}.{i}") for i in range(1, n + 1)]


def run_all(wt: Worktree, wanted: list[str], *, take_base: Callable[[], Any],
            run_one: Callable[[str, Any], int]) -> int:
    """Refuse taken names, take the base once (take_base: a capture/snapshot.Base), run
    run_one(name, base) for each name at once, say each one's end and a summary. The exit
    status: 0 when all exit 0, 130 after ^C (each attempt stopped and captured), else the
    first failed attempt's."""
    refuse_taken(wt, wanted)
    identity.current(wt) or identity.ensure(wt)  # once, before N runs race to make it
    base = take_base()
    started = start([(n, store.get(wt, n).dir) for n in wanted],
                    lambda name: run_one(name, base))
    say(f"{len(wanted)} attempts of {base.oid[:12]} started: "
        f"{', '.join(wanted)} (stdin /dev/null; output in each session's folder, {LOG_NAME})")
    got = wait(started, lambda a: say(f"[{a.name}] exit {a.status}: {last_line(a)}"))
    for a in started:  # refused before it made its session (command not found): no trace
        s = store.get(wt, a.name)
        if s.dir.is_dir() and not s.exists():
            a.log.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                s.dir.rmdir()
    failed = [a for a in started if a.status]
    say(f"{len(started) - len(failed)} of {len(started)} attempts succeeded" + (
        f"; failed: {', '.join(f'{a.name} ({a.status})' for a in failed)}" if failed else ""))
    if got:
        say("interrupted: every attempt was stopped, and captured what it had")
        return 130
    return int(failed[0].status or 1) if failed else 0


def refuse_taken(wt: Worktree, wanted: list[str]) -> None:
    """Before anything starts: none of S.1..S.N may be a session, a branch agent/S.i or a base
    ref already, nor clash as a branch with a session there is (one line names the first)."""
    there = [s.name for s in store.list_sessions(wt)]
    for name in wanted:
        s = store.get(wt, name)
        where = store.owner_elsewhere(wt, name)  # a folder here does not make it ours
        if where is not None:  # another worktree's: its refs are that worktree's
            raise UsageError(store.elsewhere_message(name, where))
        clash = [o for o in there if (o + "/").startswith(name + "/") or
                 (name + "/").startswith(o + "/")]
        if clash or s.exists() or wt.resolve(s.branch) or wt.resolve(s.base_ref):
            what = f"session {clash[0]!r}" if clash and clash[0] != name else f"session {name!r}"
            raise UsageError(f"{what} exists already: --attempts makes new sessions only; pick "
                             f"another name with -s NAME, or `git agent drop` it first")
        for ref in (s.branch, s.base_ref):
            other = wt.ref_in_the_way(ref)
            if other:
                raise UsageError(f"session {name!r} cannot be made: git cannot create {ref} "
                                 f"while {other} exists (a ref cannot also be a folder of "
                                 "refs); pick another name with -s NAME")


class Attempt(Record):
    __slots__ = ("name", "pid", "log", "fd", "status")

    def __init__(self, name: str, pid: int, log: Path, fd: int, status: int | None = None):
        self.name = name
        self.pid = pid
        self.log = log  # its stdout and stderr, both
        self.fd = fd  # the log, kept open: a run that never started removes its folder
        self.status = status  # its exit status once waited for


def start(names_and_dirs: list[tuple[str, Path]], run_one: Callable[[str], int]) -> list[Attempt]:
    """Fork one process per attempt: stdin /dev/null, stdout and stderr appended to the log in
    its session folder, then run_one(name) under errors.guarded; its result is the exit status.
    The caller must hold no thread (a fork copies only the calling one). A detached run
    (--detach) would call this and return, leaving `wait` to whoever attaches."""
    out: list[Attempt] = []
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        for name, folder in names_and_dirs:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            log = folder / LOG_NAME
            fd = os.open(log, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            pid = os.fork()
            if pid == 0:  # the attempt
                status = 1
                try:
                    null = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(null, 0)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    status = errors.guarded(lambda n=name: run_one(n),  # type: ignore[misc]
                                            debug=bool(os.environ.get("GIT_AGENT_DEBUG")))
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(status)
            out.append(Attempt(name=name, pid=pid, log=log, fd=fd))
    except BaseException:  # a fork that failed (EAGAIN, ENOMEM): the ones started end too
        for a in out:
            with contextlib.suppress(ProcessLookupError):
                os.kill(a.pid, signal.SIGTERM)
        for a in out:
            os.waitpid(a.pid, 0)
        raise
    return out


@contextlib.contextmanager
def _stops_forwarded(attempts: list[Attempt], got: list[int]) -> Iterator[None]:
    """^C, SIGTERM, hang-up while the attempts run: each one still running gets SIGTERM (run
    hands it to its agent, then captures); this process keeps waiting for all of them."""

    def forward(signum: int, _frame: object) -> None:
        got.append(signum)
        for a in attempts:
            if a.status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(a.pid, signal.SIGTERM)

    old = {s: signal.signal(s, forward) for s in STOP_SIGNALS
           if signal.getsignal(s) != signal.SIG_IGN}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def wait(attempts: list[Attempt], said: Callable[[Attempt], None]) -> list[int]:
    """Wait for every attempt (said(a) as each ends); the stop signals that came meanwhile."""
    got: list[int] = []
    with _stops_forwarded(attempts, got):
        left = {a.pid: a for a in attempts}
        while left:
            try:
                pid, st = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            a = left.pop(pid, None)
            if a is None:
                continue
            a.status = os.waitstatus_to_exitcode(st)
            if a.status < 0:  # killed by a signal: as a shell says it
                a.status = 128 - a.status
            said(a)
    return got


def last_line(a: Attempt) -> str:
    """The log's last non-empty line (run's summary, or its error), control characters
    written out (the agent wrote there too), for the progress line; the log is closed."""
    try:
        size = os.fstat(a.fd).st_size
        tail = os.pread(a.fd, 4096, max(0, size - 4096))
    except OSError:
        tail = b""
    finally:
        with contextlib.suppress(OSError):
            os.close(a.fd)
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    last = lines[-1].strip().removeprefix(errors.PREFIX.encode()) if lines else b""
    return ui.visible(last).decode(errors="replace")
