"""Directories a change would leave shaped like a git dir: git's discovery, run from there or
below, would take them for a repository and read their config (core.fsmonitor, hooks).

A directory is judged in its final state: the names your worktree has there plus the names the
session's branch has there (a deletion is not counted: the stricter answer). The top directory
is never one: it holds your .git, which git's discovery looks at first. When HEAD stands
beside objects, refs or commondir (gittree.makes_gitdir), every change the session brings at or
below that directory is the highest risk, and apply refuses it."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING

from git_agent import gittree, ui
from git_agent.mergeback.reach import Reach
from git_agent.mergeback.risks import FOREIGN_GIT

if TYPE_CHECKING:
    import pygit2


class _Trees:
    """The branch's trees by directory, each read once and parsed only when needed: a dir's
    names are looked at only when its raw tree may name a HEAD (most never do)."""

    def __init__(self, repo: pygit2.Repository, root: bytes):
        self.repo = repo
        self.raw: dict[bytes, bytes | None] = {b"": self._read(root)}
        self.parsed: dict[bytes, dict[bytes, gittree.Entry] | None] = {}

    def _read(self, oid: bytes) -> bytes | None:
        import pygit2

        typ, data = self.repo.odb.read(pygit2.Oid(raw=oid))
        return bytes(data) if typ == pygit2.GIT_OBJECT_TREE else None

    def entries(self, d: bytes) -> dict[bytes, gittree.Entry] | None:
        if d not in self.parsed:
            raw = self.get(d)
            self.parsed[d] = gittree.parse_tree(raw) if raw is not None else None
        return self.parsed[d]

    def get(self, d: bytes) -> bytes | None:
        """The raw tree at d (None: no tree there)."""
        if d not in self.raw:
            parent, _, name = d.rpartition(b"/")
            up = self.entries(parent)
            e = None if up is None else up.get(name)
            self.raw[d] = self._read(e[1]) if e is not None and e[0] == gittree.TREE else None
        return self.raw[d]

    def names(self, d: bytes) -> set[bytes]:
        raw = self.get(d)
        if raw is None or not _MAY_NAME_HEAD.search(raw):
            return set()  # none of them is HEAD: they cannot make a git dir with the worktree's
        return set(self.entries(d) or ())


# " HEAD\0" in a raw tree, any ASCII case: the name of an entry (an oid may match by chance:
# then the tree is parsed, no harm)
_MAY_NAME_HEAD = re.compile(rb"(?i) head\0")


def _listing(reach: Reach, parts: Sequence[bytes]) -> list[str]:
    """The entry names of the worktree's directory at parts, as os.listdir gives them (none
    when it is no directory)."""
    try:
        fd = reach.open(parts)
    except OSError:
        return []
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


# HEAD in every ASCII case: bytes.lower() of exactly these is b"head"
_HEADS = frozenset("".join(c) for c in itertools.product("hH", "eE", "aA", "dD"))


def _has_head(names: Sequence[str]) -> bool:
    """Is one of these names HEAD in any ASCII case (as bytes.lower() compares)?"""
    return not _HEADS.isdisjoint(names)


def _as_bytes(names: Sequence[str]) -> set[bytes]:
    return {os.fsencode(n) for n in names}


def _dirs(paths: Iterable[bytes]) -> list[bytes]:
    """Every directory holding one of paths, but the top, parents first (a prefix sorts
    first), neighbours together."""
    parents = {p.rpartition(b"/")[0] for p in paths}  # many paths share one
    dirs = {b"/".join(parts[:i]) for d in parents
            for parts in (d.split(b"/"),) for i in range(len(parts) + 1)}
    dirs.discard(b"")  # the top has your .git, which git's discovery finds first
    return sorted(dirs)


def _branch_trees(repo: pygit2.Repository, head: str) -> _Trees:
    import pygit2

    commit = repo.revparse_single(head)
    assert isinstance(commit, pygit2.Commit)
    return _Trees(repo, commit.tree_id.raw)


def head_dirs(repo: pygit2.Repository, head: str, paths: Iterable[bytes]) -> list[bytes]:
    """The directories holding one of paths whose tree in the branch may name a HEAD: the
    only ones where the branch's names can matter unless yours hold a HEAD (kept with the
    assessment, assessed.py, so review need not read the branch's trees)."""
    trees = _branch_trees(repo, head)
    return [d for d in _dirs(paths) if (raw := trees.get(d)) is not None
            and _MAY_NAME_HEAD.search(raw)]


def shaped_dirs(root_fd: int, repo: Callable[[], pygit2.Repository], head: str,
                paths: Iterable[bytes], *, heads: Collection[bytes] | None = None
                ) -> dict[bytes, str]:
    """The directories holding (at any depth) one of paths, the ones the session adds or
    changes, that would look like a git dir afterwards, with the reason to show.

    repo: opens the repository, called only when a branch tree is needed; heads: what
    head_dirs answers for these paths, when known (no other branch tree is then read)."""
    got: list[_Trees] = []

    def trees() -> _Trees:
        if not got:
            got.append(_branch_trees(repo(), head))
        return got[0]

    out: dict[bytes, str] = {}
    with Reach(root_fd) as reach:
        for d in _dirs(paths):
            listed = _listing(reach, d.split(b"/"))
            if _has_head(listed):
                names = set(trees().entries(d) or ()) | _as_bytes(listed)
            elif heads is not None and d not in heads:
                continue  # the branch's tree there names no HEAD, nor do yours
            else:  # the tree's names only when it may name a HEAD; yours only beside them
                names = trees().names(d)
                if names:
                    names |= _as_bytes(listed)
            if gittree.makes_gitdir(names):
                out[d] = (f"{FOREIGN_GIT}: {ui.quote_path(d + b'/')} would hold HEAD beside "
                          "objects/refs, a git dir whose config git reads")
    return out


def gitdir_risks(root_fd: int, repo: Callable[[], pygit2.Repository], head: str,
                 paths: Sequence[bytes], *, heads: Collection[bytes] | None = None
                 ) -> dict[bytes, str]:
    """For each of paths (added or changed by the session) inside a directory shaped_dirs
    finds, the reason (the outermost such directory's)."""
    shaped = shaped_dirs(root_fd, repo, head, paths, heads=heads)
    out: dict[bytes, str] = {}
    if not shaped:
        return out
    for p in paths:
        parts = p.split(b"/")
        for i in range(len(parts)):
            d = b"/".join(parts[:i])
            if d in shaped:
                out[p] = shaped[d]
                break
    return out


def tree_shaped_dirs(repo: pygit2.Repository, tree: bytes, paths: Iterable[bytes]
                     ) -> dict[bytes, str]:
    """For each of paths, the reason when a directory holding it (not the top) is shaped
    like a git dir in this tree alone (a commit as checked out: no worktree names)."""
    trees = _Trees(repo, tree)
    out: dict[bytes, str] = {}
    for p in paths:
        parts = p.split(b"/")
        for i in range(1, len(parts)):
            d = b"/".join(parts[:i])
            if gittree.makes_gitdir(trees.names(d)):
                out[p] = (f"{FOREIGN_GIT}: {ui.quote_path(d + b'/')} would hold HEAD beside "
                          "objects/refs, a git dir whose config git reads")
                break
    return out
