"""Where a symlink the session brings leads once applied, resolved as the kernel would: one
component at a time, through every link on the way, in the tree apply produces (the branch's
head tree) and, where that tree has no entry, your worktree's own (an untracked or ignored
link of yours). A link's text alone says little: `a -> .` then `u -> a/..` leaves the
repository, though each target reads as inside.

It reads your worktree, so it is never part of the stored assessment (assessed.py): it is
judged at each review and apply, like the git-dir shape (foreign.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from git_agent import beneath, gittree, ui
from git_agent.mergeback.foreign import _Trees

if TYPE_CHECKING:
    import pygit2

MAX_FOLLOWS = 40  # the kernel's limit: one more is ELOOP
_OUT, _LOOP = "out", "loop"

# What a path is in the final tree: a link (with its target), or anything else (None).
Look = Callable[[Sequence[bytes]], bytes | None]


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
        if link is None:
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
        if got == _OUT:
            return ("symlink pointing outside the repository (through the links on its way): "
                    f"{shown}")
        return f"symlink that never resolves (a loop, over {MAX_FOLLOWS} links): {shown}"
    if any(gittree.is_dotgit(c) for c in got):
        return f"symlink into .git (through the links on its way): {shown}"
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
                return None
            typ, data = self.repo.odb.read(pygit2.Oid(raw=e[1]))
            return bytes(data) if typ == pygit2.GIT_OBJECT_BLOB else None
        try:  # the branch does not say: your worktree's own entry there
            fd = beneath.open_dir(self.root_fd, list(comps[:-1]))
        except OSError:
            return None
        try:
            return os.readlink(comps[-1], dir_fd=fd)
        except OSError:
            return None  # none there, or no link
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
