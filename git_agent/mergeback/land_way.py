"""What `apply --commit` would write over that your index does not track.

git's `read-tree -m -u` counts ignored files as expendable: it writes over an ignored file,
and deletes an ignored directory (or the ignored files of a tracked one) to put a file in its
place. So before the landing writes, every path it adds or changes and every directory on the
way is looked at (lstat, never following a link): whatever is there that the index (OLD's,
as the landing starts from a clean index) does not track, untracked or ignored, file,
directory or link, is named, and nothing is written."""

from __future__ import annotations

import errno
import os
import stat

from git_agent import proc
from git_agent.capture.tree import Odb
from git_agent.capture.treediff import diff_trees
from git_agent.repo import Worktree

_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG)


def _lstat(root: bytes, path: bytes) -> os.stat_result | None:
    try:
        return os.lstat(os.path.join(root, path))
    except OSError as e:
        if e.errno in _ABSENT:
            return None
        raise


def _untracked_below(root: bytes, top: bytes, files: set[bytes], dirs: set[bytes]
                     ) -> list[bytes]:
    """The entries under the real directory top that the index does not track (an untracked
    directory is named, not walked)."""
    out: list[bytes] = []
    stack = [top]
    while stack:
        d = stack.pop()
        with os.scandir(os.path.join(root, d)) as it:
            for e in it:
                p = d + b"/" + os.fsencode(e.name)
                if p in files:
                    continue
                if e.is_dir(follow_symlinks=False) and p in dirs:
                    stack.append(p)
                else:
                    out.append(p)
    return sorted(out)


def in_the_way(wt: Worktree, odb: Odb, old_tree: bytes, new_tree: bytes) -> list[bytes]:
    """The worktree entries, not tracked by the index, at or on the way to a path that going
    from old_tree to new_tree adds or changes."""
    changed = [p for k, p in diff_trees(odb, old_tree, new_tree) if k != "D"]
    if not changed:
        return []
    files = {p for p in proc.git("ls-files", "-z", "--full-name", cwd=wt.root).split(b"\0")
             if p}
    dirs = {p[:i] for p in files for i in range(len(p)) if p[i:i + 1] == b"/"}
    root = os.fsencode(wt.root)
    found: set[bytes] = set()
    seen: set[bytes] = set()
    for path in changed:
        parts = path.split(b"/")
        for i in range(1, len(parts) + 1):
            here = b"/".join(parts[:i])
            if here in seen:
                continue
            seen.add(here)
            try:
                st = _lstat(root, here)
            except OSError:
                found.add(here)  # cannot be looked at: not written over blindly
                break
            if st is None or here in files:
                break  # nothing there, or git's own (read-tree checks it is up to date)
            if stat.S_ISDIR(st.st_mode) and here in dirs:
                if i == len(parts):  # a tracked directory a file replaces: what else is in it
                    found.update(_untracked_below(root, here, files, dirs))
                continue
            found.add(here)
            break
    return sorted(found)
