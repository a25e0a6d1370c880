"""The one family of user-facing errors, and the one place that prints them (`guarded`)."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from typing import TextIO


class GitAgentError(Exception):
    """An error the user can act on; its text says what to do."""

    exit_code = 1


class UsageError(GitAgentError):
    """Bad arguments or names given on the command line."""

    exit_code = 2


class NotARepository(GitAgentError):
    """Not inside a git worktree we can sandbox."""


class SandboxUnavailable(GitAgentError):
    """A protection the user asked for cannot be set up here (fail closed)."""


class SessionBusy(GitAgentError):
    """The session is locked by another git agent; `doing` says what it does ("run",
    "apply", "drop", or "busy" when it did not say)."""

    def __init__(self, message: str, *, doing: str = "run"):
        super().__init__(message)
        self.doing = doing


class Conflict(GitAgentError):
    """apply found paths that do not merge cleanly; nothing was written."""


class ApplyFailed(GitAgentError):
    """apply could not write a path; what it had written before it was taken back."""


class Aborted(GitAgentError):
    """The user aborted (EOF or ^C at a prompt); nothing was changed."""

    exit_code = 130


_interrupted: list[int] = []  # a ^C came (whatever error it turned into on its way up)


def _raise_interrupt(signum: int, _frame: object) -> None:
    _interrupted.append(signum)
    raise KeyboardInterrupt


def interrupt_raises() -> None:
    """^C raises KeyboardInterrupt again (__main__ made it end git agent at once while it
    started, so that it shows no traceback), and is remembered: cut short inside a C module
    (an import, a callback), it can reach guarded as another error."""
    import signal

    if signal.getsignal(signal.SIGINT) in (signal.SIG_DFL, signal.default_int_handler):
        signal.signal(signal.SIGINT, _raise_interrupt)


PREFIX = "git agent: "  # of every message to the user (ui.say, and errors here)


def guarded(fn: Callable[[], int], *, debug: bool) -> int:
    """Run a command; a GitAgentError becomes `git agent: <message>` on stderr and its exit
    code, ^C 130, a bug one line (its traceback with --debug / GIT_AGENT_DEBUG)."""
    try:
        interrupt_raises()
        code = fn()
        sys.stdout.flush()  # a failed write is said here, in one line, not by Python at exit
        return code
    except GitAgentError as e:
        if debug:
            raise
        if _interrupted:
            return _said_interrupted()
        write_err(PREFIX + str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return _said_interrupted()
    except BrokenPipeError:  # the reader left (`| head`): not an error of ours to report
        silence(sys.stdout)
        return 1
    except Exception as e:  # noqa: BLE001 - the one place that turns bugs into one line
        if debug:
            raise
        if _interrupted:
            return _said_interrupted()
        if isinstance(e, OSError) and e.errno in _FULL_OR_BROKEN:
            where = f" ({os.fsdecode(e.filename)})" if e.filename else ""
            write_err(f"{PREFIX}{e.strerror}{where}")
            silence(sys.stdout)  # what it still holds would fail again at exit
            return 1
        write_err(f"{PREFIX}internal error: {type(e).__name__}: {e} (rerun with --debug)")
        return 1


def _said_interrupted() -> int:
    write_err(PREFIX + "interrupted")
    return 130


# Not a bug of git agent: the disk (or the quota) is full, read-only or failing. Said in one
# line, with the file when there is one (none: most likely standard output, `>/dev/full`).
_FULL_OR_BROKEN = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG)


def write_err(line: str) -> None:
    """A line on stderr; if even that cannot be written (`2>/dev/full`), the exit code says
    it alone."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        silence(sys.stderr)


def silence(stream: TextIO) -> None:
    """From now on the stream's fd is /dev/null: what its buffer holds is dropped at exit
    instead of failing again there (a reader gone, a full disk)."""
    with contextlib.suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
