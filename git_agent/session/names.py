"""Session names: the rules a name follows to be the branch agent/<name>, and the default one."""

from __future__ import annotations

import os
import re
from urllib.parse import quote  # pathlib imports it anyway

from git_agent.errors import UsageError
from git_agent.repo import Worktree

DETACHED_NAME = "detached"
BRANCH_PREFIX = "refs/heads/agent/"
BASE_PREFIX = "refs/agent-base/"

_BAD_NAME = re.compile(r"\s")
# What git's check_refname_format refuses (refs.c, flags 0): control characters, space, DEL,
# ~ ^ : ? * [ \, "..", "@{", a component that is empty, starts with "." or ends with ".lock",
# a name ending with "." or being "@", fewer than two components.
_REF_BAD_CHAR = re.compile(rb"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{")


def refname_ok(ref: str) -> bool:
    """Would `git check-ref-format ref` accept it? (The same rules, without a process.)"""
    try:
        raw = os.fsencode(ref)
    except UnicodeError:
        return False
    if raw == b"@" or raw.endswith(b".") or _REF_BAD_CHAR.search(raw):
        return False
    parts = raw.split(b"/")
    return len(parts) >= 2 and all(
        p and not p.startswith(b".") and not p.endswith(b".lock") for p in parts)


def check_name(name: str) -> str:
    """Refuse a session name that cannot be the branch agent/<name>; return it unchanged."""
    why = None
    if not name:
        why = "it is empty"
    elif _BAD_NAME.search(name):
        why = "it contains whitespace"
    elif name.startswith("-"):
        why = "it starts with '-'"
    elif ".." in name:
        why = "it contains '..'"
    elif (
        name.endswith(".lock") or "/" in name and any(c.endswith(".lock") for c in name.split("/"))
    ):
        why = "it ends with '.lock'"
    elif name.startswith("/") or name.endswith("/") or "//" in name:
        why = "it has an empty path component"
    elif not refname_ok(BRANCH_PREFIX + name):
        why = "git check-ref-format refuses it"
    elif len(quote(name, safe="")) > 240:  # the session folder's name: one path component
        why = "it is too long"
    if why:
        raise UsageError(
            f"invalid session name {name!r}: {why} (it must work as branch agent/NAME)"
        )
    return name


def default_name(worktree: Worktree) -> str:
    """The session named after the current branch; on a detached HEAD 'detached', and in a
    linked worktree 'detached-ID' (ID: git's name for it, .git/worktrees/ID, unique in the
    repository): refs are shared, so two detached worktrees must not default to one name."""
    ref = worktree.head_ref()
    if ref and ref.startswith("refs/heads/"):
        return ref[len("refs/heads/") :]
    if worktree.linked:
        name = f"{DETACHED_NAME}-{worktree.git_dir.name}"
        try:
            return check_name(name)
        except UsageError:
            pass  # an id git would not make: the plain name (run refuses it when taken)
    return DETACHED_NAME
