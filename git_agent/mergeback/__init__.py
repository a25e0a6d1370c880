"""Merge-back: the session's changes as a view, risk rules, the apply engine, worktree writes."""
