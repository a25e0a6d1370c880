"""A known repository-shaped tree placed at a new path by an imported commit.

Importer.queue checks each new tree it copies for a repository's shape, but skips objects
the repository's store already has: a fixture you committed, or a tree fetched with a pull
request, could be placed by an agent's commit at a new path unchecked. Here every tree a new
commit reaches at a path where none of its parents has that same tree is checked, known or
not; a known tree with everything below it, once per import (memoized by tree id).
"""

from __future__ import annotations

from collections.abc import Callable

import pygit2

from git_agent import gittree
from git_agent.gittree import TREE, parse_tree


class ShapedAtNewPath(Exception):
    """A known tree holding a repository's shape at a new path (the message says which)."""


class KnownShapes:
    """Which trees of the repository's store have a repository's shape in or below them."""

    def __init__(self, repo: pygit2.Repository):
        self.repo = repo
        self._shaped: dict[bytes, bool] = {}

    def known(self, oid: bytes) -> bool:
        return pygit2.Oid(raw=oid) in self.repo.odb

    def shaped(self, tree: bytes) -> bool:
        """Walked iteratively (any depth), each tree once: children decided before parents."""
        subs: dict[bytes, list[bytes]] = {}
        stack = [(tree, False)]
        while stack:
            t, done = stack.pop()
            if t in self._shaped:
                continue
            if done:
                self._shaped[t] = any(self._shaped[s] for s in subs[t])
                continue
            if t in subs:
                continue  # scheduled already: its marker is below, decided before its parents
            entries = parse_tree(bytes(self.repo.odb.read(pygit2.Oid(raw=t))[1]))
            if gittree.makes_gitdir(entries):
                self._shaped[t] = True
                continue
            subs[t] = [sub for mode, sub in entries.values() if mode == TREE]
            stack.append((t, True))
            stack.extend((s, False) for s in subs[t])
        return self._shaped[tree]


def check(shapes: KnownShapes, read: Callable[[bytes], bytes], tree: bytes,
          olds: list[bytes]) -> None:
    """Raise ShapedAtNewPath when a known tree with a repository's shape in or below it stands
    at a path of `tree` (a new commit's root) where none of `olds` (its parents' roots) has
    that same tree. A tree the same as a parent's at its path brings nothing new and is not
    walked; a new tree is walked (its own shape is queue's to check)."""
    stack = [(tree, olds)]
    seen: set[tuple[bytes, tuple[bytes, ...]]] = set()
    while stack:
        t, was = stack.pop()
        key = (t, tuple(sorted(was)))
        if t in was or key in seen:
            continue
        seen.add(key)
        if shapes.known(t):
            if shapes.shaped(t):
                raise ShapedAtNewPath(f"tree {t.hex()} holds a directory of a repository's shape "
                                      "(HEAD beside objects/refs) at a new path")
            continue
        old_entries = [parse_tree(read(o)) for o in was]
        for name, (mode, sub) in parse_tree(read(t)).items():
            if mode == TREE:
                stack.append((sub, [e[name][1] for e in old_entries
                                    if e.get(name, (0, b""))[0] == TREE]))
