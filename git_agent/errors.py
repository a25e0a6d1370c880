"""The one family of user-facing errors; cli.py prints them once and exits with exit_code."""


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
