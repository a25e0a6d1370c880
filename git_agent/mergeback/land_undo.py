"""Taking back a landing whose `git read-tree -m -u` failed partway (a directory you cannot
write, a name the filesystem refuses, a full disk).

git writes the files it can and does not write the index when one fails: the worktree is
half moved. The index file is kept aside before the write and put back whole; then the files
at the landing's paths are removed (land_way made sure nothing untracked stood there before,
and the dry run that the tracked ones held exactly the index's version: whatever is there is
git's or the index's), with the directories made for them when left empty (none of them was
there before, for the same reason), and the paths the landing changed or removed are written
back from the index (`git checkout-index -f`)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from git_agent import beneath, proc
from git_agent.capture.tree import Odb
from git_agent.capture.treediff import diff_trees
from git_agent.gittree import TREE
from git_agent.repo import Worktree


def _index_path(wt: Worktree) -> Path:
    out = proc.git("rev-parse", "--git-path", "index", cwd=wt.root).decode().strip()
    return Path(out) if os.path.isabs(out) else wt.root / out


def read_index(wt: Worktree) -> bytes:
    """The index file's bytes, read before the write (for put_back)."""
    return _index_path(wt).read_bytes()


def put_back(wt: Worktree, odb: Odb, old_tree: bytes, new_tree: bytes, index: bytes) -> None:
    """Worktree and index as they were before `read-tree -m -u old new` failed partway;
    raises OSError / proc errors when that cannot be done."""
    path = _index_path(wt)
    tmp = path.with_name(path.name + ".git-agent-undo")
    tmp.write_bytes(index)
    os.replace(tmp, path)
    changed = diff_trees(odb, old_tree, new_tree)
    olds = [p for k, p in changed if k != "A"]
    made: set[bytes] = set()
    root_fd = beneath.open_root(wt.root)
    try:
        # every file of the landing's paths goes (git's, or the old version it checked was the
        # index's): checkout-index would leave a file whose stat data matches the index entry.
        # By fd beneath the root, no component followed: the half-moved worktree may hold a
        # symlink the landing made where a directory of yours was
        for _, p in changed:
            _remove_beneath(root_fd, p, os.unlink, directories=False)
            parts = p.split(b"/")
            made.update(b"/".join(parts[:i]) for i in range(1, len(parts)))
        for d in sorted(made, key=lambda d: -d.count(b"/")):  # deepest first
            was = odb.lookup(old_tree, d)
            if was is not None and was[0] == TREE:
                continue  # a directory of yours
            _remove_beneath(root_fd, d, os.rmdir, directories=True)  # only when empty
    finally:
        os.close(root_fd)
    if olds:
        proc.run(["git", "checkout-index", "-f", "-q", "-z", "--stdin"], cwd=wt.root,
                 input=b"".join(p + b"\0" for p in olds))


def _remove_beneath(root_fd: int, path: bytes, remove: Callable[..., None], *,
                    directories: bool) -> None:
    """remove(name, dir_fd=...) the entry at path beneath root_fd when it is there and a
    directory (directories) or not one; a parent that is missing, not a directory or a
    symlink means nothing of ours is there: nothing is followed or removed."""
    try:
        with beneath.parent(root_fd, path) as (fd, name):
            st = os.lstat(name, dir_fd=fd)
            if stat.S_ISDIR(st.st_mode) == directories:
                remove(name, dir_fd=fd)
    except OSError as e:
        if not directories and e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP,
                                               errno.ENAMETOOLONG):
            raise  # a directory left behind is said by nothing: it was empty or is yours
