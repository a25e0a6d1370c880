"""Directories a change would leave shaped like a git dir: git's discovery, run from there or
below, would take them for a repository and read their config (core.fsmonitor, hooks).

A directory is judged in its final state: the names your worktree has there plus the names the
session's branch has there (a deletion is not counted: the stricter answer). The top directory
is never one: it holds your .git, which git's discovery looks at first. When HEAD stands
beside objects, refs or commondir (gittree.makes_gitdir), every change the session brings at or
below that directory is the highest risk, and apply refuses it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from git_agent import gittree, ui
from git_agent.mergeback.reach import Reach
from git_agent.mergeback.risks import FOREIGN_GIT

if TYPE_CHECKING:
    import pygit2


def _subtree(repo: pygit2.Repository, tree: dict[bytes, gittree.Entry] | None,
             name: bytes) -> dict[bytes, gittree.Entry] | None:
    """The entries of the tree entry name of tree, when it is a tree (parsed from its raw
    object: pygit2's entry objects cost ~1 us each, and a dir may hold thousands)."""
    import pygit2

    entry = None if tree is None else tree.get(name)
    if entry is None or entry[0] != gittree.TREE:
        return None
    typ, data = repo.odb.read(pygit2.Oid(raw=entry[1]))
    return gittree.parse_tree(bytes(data)) if typ == pygit2.GIT_OBJECT_TREE else None


def _worktree_names(reach: Reach, parts: Sequence[bytes]) -> set[bytes]:
    """The entry names of the worktree's directory at parts (empty when it is none)."""
    try:
        fd = reach.open(parts)
    except OSError:
        return set()
    try:
        return {os.fsencode(n) for n in os.listdir(fd)}
    finally:
        os.close(fd)


def shaped_dirs(root_fd: int, repo: pygit2.Repository, head: str,
                paths: Iterable[bytes]) -> dict[bytes, str]:
    """The directories holding (at any depth) one of paths, the ones the session adds or
    changes, that would look like a git dir afterwards, with the reason to show."""
    import pygit2

    commit = repo.revparse_single(head)
    assert isinstance(commit, pygit2.Commit)
    tree = gittree.parse_tree(bytes(repo.odb.read(commit.tree_id)[1]))
    dirs = {b"/".join(p.split(b"/")[:i]) for p in paths for i in range(p.count(b"/") + 1)}
    out: dict[bytes, str] = {}
    trees: dict[bytes, dict[bytes, gittree.Entry] | None] = {b"": tree}
    with Reach(root_fd) as reach:
        for d in sorted(dirs):  # parents first (a prefix sorts first), neighbours together
            if not d:
                continue  # the top has your .git, which git's discovery finds first
            parts = d.split(b"/")
            trees[d] = _subtree(repo, trees.get(b"/".join(parts[:-1])), parts[-1])
            here = trees[d]
            names = set(here or ()) | _worktree_names(reach, parts)
            if gittree.makes_gitdir(names):
                out[d] = (f"{FOREIGN_GIT}: {ui.quote_path(d + b'/')} would hold HEAD beside "
                          "objects/refs, a git dir whose config git reads")
    return out


def gitdir_risks(root_fd: int, repo: pygit2.Repository, head: str,
                 paths: Sequence[bytes]) -> dict[bytes, str]:
    """For each of paths (added or changed by the session) inside a directory shaped_dirs
    finds, the reason (the outermost such directory's)."""
    shaped = shaped_dirs(root_fd, repo, head, paths)
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
