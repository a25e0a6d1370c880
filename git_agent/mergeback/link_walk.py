"""Where a symlink the session brings leads once applied, resolved as the kernel would: one
component at a time, through every link on the way, in the tree apply produces (the branch's
head tree) and, where that tree has no entry, your worktree's own (an untracked or ignored
link of yours). A link's text alone says little: `a -> .` then `u -> a/..` leaves the
repository, though each target reads as inside.

It reads your worktree, so it is never part of the stored assessment (assessed.py): it is
judged at each review and apply, like the git-dir shape (foreign.py)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from git_agent import beneath, gittree, ui
from git_agent.mergeback.foreign import _Trees

if TYPE_CHECKING:
    import pygit2

MAX_FOLLOWS = 40  # the kernel's limit: one more is ELOOP
LEADS_OUT = "symlink pointing outside the repository (through the links on its way)"
LOOPS = f"symlink that never resolves (a loop, over {MAX_FOLLOWS} links)"
INTO_GIT = "symlink into .git (through the links on its way)"
UPWARD = "symlink to a directory above it (a `..` after it climbs further)"
REFUSED = (LEADS_OUT, LOOPS, INTO_GIT)  # apply --ignored refuses these; UPWARD is asked
_OUT, _LOOP = "out", "loop"

# What a path is in the final tree: a link (its target), a file that is no directory
# (NOT_DIR: no link's target holds a NUL), or a directory or nothing (None).
Look = Callable[[Sequence[bytes]], bytes | None]
NOT_DIR = b"\0"


def resolve(look: Look, start: Sequence[bytes], target: bytes) -> list[bytes] | str:
    """The components (from the worktree root, none of them a link) that target, read from
    the directory start, ends at; _OUT when it leaves the root (a `..` above it, an absolute
    link on the way), _LOOP when it does not end within MAX_FOLLOWS links. A missing
    component, or one that is no directory, is taken as a directory (the stricter answer: a
    later write may make it one)."""
    if target.startswith(b"/"):
        return _OUT
    cur = list(start)
    todo = target.split(b"/")[::-1]  # a stack: the next component last
    follows = 0
    while todo:
        c = todo.pop()
        if c in (b"", b"."):
            continue
        if c == b"..":
            if not cur:
                return _OUT
            cur.pop()
            continue
        link = look([*cur, c])
        if link is None or link == NOT_DIR:
            cur.append(c)
            continue
        follows += 1
        if follows > MAX_FOLLOWS:
            return _LOOP
        if link.startswith(b"/"):
            return _OUT
        todo.extend(link.split(b"/")[::-1])  # read from cur, the link's directory
    return cur


def leads_out(look: Look, path: bytes, target: bytes) -> str | None:
    """Why the link at path (from the worktree root) to target is risky once resolved, or
    None when it ends inside the worktree, outside .git."""
    shown = ui.quote_path(target)
    got = resolve(look, path.split(b"/")[:-1], target)
    if isinstance(got, str):
        return f"{LEADS_OUT if got == _OUT else LOOPS}: {shown}"
    if any(gittree.is_dotgit(c) for c in got):
        return f"{INTO_GIT}: {shown}"
    if len(got) < path.count(b"/") + 1 and (not got or look(got) != NOT_DIR):
        return f"{UPWARD}: {shown}"
    return None


class FinalLinks:
    """The links of the tree apply produces: the branch's head tree where it has an entry,
    your worktree (read beneath root_fd, never following a link) where it has none."""

    def __init__(self, repo: pygit2.Repository, head: str, root_fd: int) -> None:
        import pygit2

        commit = repo.revparse_single(head)
        assert isinstance(commit, pygit2.Commit)
        self.repo: pygit2.Repository = repo
        self.trees: _Trees = _Trees(repo, commit.tree_id.raw)
        self.root_fd: int = root_fd
        self.seen: dict[bytes, bytes | None] = {}

    def __call__(self, comps: Sequence[bytes]) -> bytes | None:
        key = b"/".join(comps)
        if key not in self.seen:
            self.seen[key] = self._look(comps)
        return self.seen[key]

    def _look(self, comps: Sequence[bytes]) -> bytes | None:
        import pygit2

        entries = self.trees.entries(b"/".join(comps[:-1]))
        e = None if entries is None else entries.get(comps[-1])
        if e is not None:
            if e[0] != gittree.LINK:
                return None if e[0] == gittree.TREE else NOT_DIR
            typ, data = self.repo.odb.read(pygit2.Oid(raw=e[1]))
            return bytes(data) if typ == pygit2.GIT_OBJECT_BLOB and b"\0" not in data else None
        return worktree_entry(self.root_fd, comps)  # the branch does not say: yours


def worktree_entry(root_fd: int, comps: Sequence[bytes], missing: bytes | None = None
                   ) -> bytes | None:
    """What the tree beneath root_fd (your worktree, a session's upper) has at comps, as a
    Look answers (no link on the way followed); `missing` when nothing is there."""
    try:
        fd = beneath.open_dir(root_fd, list(comps[:-1]))
    except OSError:
        return missing
    try:
        st = os.stat(comps[-1], dir_fd=fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            return os.readlink(comps[-1], dir_fd=fd)
        return None if stat.S_ISDIR(st.st_mode) else NOT_DIR
    except OSError:
        return missing
    finally:
        os.close(fd)


def link_risks(repo: pygit2.Repository, head: str, root_fd: int,
               links: Sequence[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """For each (path, target) of the links the session brings, the reason it leads out once
    applied (leads_out), when it does."""
    if not links:
        return {}
    look = FinalLinks(repo, head, root_fd)
    out: dict[bytes, str] = {}
    for path, target in links:
        r = leads_out(look, path, target)
        if r:
            out[path] = r
    return out
