"""The one family of user-facing errors, and the one place that prints them (`guarded`)."""

from __future__ import annotations

import sys
from collections.abc import Callable


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
    """The session is running (locked by another git-agent)."""


class Conflict(GitAgentError):
    """apply found paths that do not merge cleanly; nothing was written."""


class Aborted(GitAgentError):
    """The user aborted (EOF or ^C at a prompt); nothing was changed."""

    exit_code = 130


def guarded(fn: Callable[[], int], *, debug: bool) -> int:
    """Run a command; a GitAgentError becomes `git agent: <message>` on stderr and its exit
    code, ^C 130, a bug one line (its traceback with --debug / GIT_AGENT_DEBUG)."""
    try:
        return fn()
    except GitAgentError as e:
        if debug:
            raise
        print(f"git agent: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("git agent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001 - the one place that turns bugs into one line
        if debug:
            raise
        print(f"git agent: internal error: {type(e).__name__}: {e} (rerun with --debug)",
              file=sys.stderr)
        return 1
