"""Where a symlink the session brings leads once applied, resolved as the kernel would: one
component at a time, through every link on the way, in what your worktree will be once this
apply is done: the entries it writes, and for every other path your worktree as it is now
(your own links, your submodules' checkouts), never the session's upper. A link's text
alone says little: `a -> .` then `u -> a/..` leaves the repository,
though each target reads as inside.

It reads your worktree, so it is never part of the stored assessment (assessed.py): it is
judged at each review and apply, like the git-dir shape (foreign.py)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from git_agent import beneath, gittree, ui

MAX_FOLLOWS = 40  # the kernel's limit: one more is ELOOP
LEADS_OUT = "symlink pointing outside the repository (through the links on its way)"
LOOPS = f"symlink that never resolves (a loop, over {MAX_FOLLOWS} links)"
INTO_GIT = "symlink into .git (through the links on its way)"
UPWARD = "symlink to a directory above it (a `..` after it climbs further)"
REFUSED = (LEADS_OUT, LOOPS, INTO_GIT)  # apply --ignored refuses these; UPWARD is asked
_OUT, _LOOP = "out", "loop"

# What a path is in the final tree: a link (its target), a regular file (NOT_DIR: no link's
# target holds a NUL), or anything else (None): a directory, a submodule, nothing, a special
# file, an unreadable entry: not known to be a file, so taken as a directory.
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
    """What each path will be in your worktree once this apply is done: the entries it writes
    (writes: a link's target, NOT_DIR for a regular file, None for a directory, a submodule or
    a deletion), a directory on the way to one it writes, and for every other path your
    worktree as it is now (read beneath root_fd, never following a link). Never the session's
    upper, never the branch's tree for a path this apply does not write."""

    def __init__(self, root_fd: int, writes: Mapping[bytes, bytes | None]) -> None:
        self.root_fd: int = root_fd
        self.writes: Mapping[bytes, bytes | None] = writes
        self.dirs: set[bytes] = set()
        for path in writes:  # a deletion too: git leaves the directory it was in
            parts = path.split(b"/")
            self.dirs.update(b"/".join(parts[:i]) for i in range(1, len(parts)))
        self.seen: dict[bytes, bytes | None] = {}

    def __call__(self, comps: Sequence[bytes]) -> bytes | None:
        key = b"/".join(comps)
        if key not in self.seen:
            if key in self.writes:
                self.seen[key] = self.writes[key]
            elif key in self.dirs:
                self.seen[key] = None
            else:
                self.seen[key] = worktree_entry(self.root_fd, comps)
        return self.seen[key]


def written(mode: int | None, target: Callable[[], bytes | None]) -> bytes | None:
    """What an entry apply writes leaves at its path, as a Look answers: a link's target
    (read only for a link), NOT_DIR for a regular file, None for a submodule (a directory in
    your worktree) or a deletion (mode None)."""
    if mode is None or mode == gittree.GITLINK:
        return None
    if mode != gittree.LINK:
        return NOT_DIR
    got = target() or b""
    return None if b"\0" in got else got


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
        return NOT_DIR if stat.S_ISREG(st.st_mode) else None  # else: not known a file
    except OSError:
        return missing
    finally:
        os.close(fd)


def link_risks(root_fd: int, writes: Mapping[bytes, bytes | None]) -> dict[bytes, str]:
    """For each link this apply writes (writes: as FinalLinks takes them, links among them by
    a target that is not None or NOT_DIR), the reason it leads out once applied (leads_out),
    when it does."""
    look = FinalLinks(root_fd, writes)
    out: dict[bytes, str] = {}
    for path, target in writes.items():
        if target is not None and target != NOT_DIR:
            r = leads_out(look, path, target)
            if r:
                out[path] = r
    return out


def link_risks_beneath(root: Path, writes: Mapping[bytes, bytes | None]) -> dict[bytes, str]:
    """link_risks with the worktree root opened (beneath.open_root) for this walk alone."""
    root_fd = beneath.open_root(root)
    try:
        return link_risks(root_fd, writes)
    finally:
        os.close(root_fd)
