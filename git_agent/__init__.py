"""git-agent: run a coding agent in a sandbox over a copy-on-write view of the worktree."""

__version__ = "0.1.0"
