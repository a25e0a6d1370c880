"""Which files differ between two trees: (A|M|D, path), as `git diff-tree -r` lists them."""

from __future__ import annotations

import pygit2

from git_agent.capture.tree import Odb, _join
from git_agent.gittree import TREE


def _diff_key(item: tuple[str, bytes]) -> list[tuple[bytes, int]]:
    """A directory's files before the file of the same name, siblings by name."""
    parts = item[1].split(b"/")
    return [(p, 0) for p in parts[:-1]] + [(parts[-1], 1)]


def diff_trees(odb: Odb, old: bytes | None, new: bytes | None
               ) -> list[tuple[str, bytes]]:
    """(A|M|D, path) for every file that differs; equal subtrees are skipped by oid. By
    libgit2 when both trees are in the repository already (a recapture after apply: the
    base's), in Python otherwise (a tree just built is only in the pack being written)."""
    if old is not None and new is not None and old != new and odb.has(old) and odb.has(new):
        try:
            return _diff_in_repo(odb.repo, old, new)
        except (KeyError, ValueError, pygit2.GitError):
            pass
    return _diff_py(odb, old, new)


_STATUS = {pygit2.enums.DeltaStatus.ADDED: "A", pygit2.enums.DeltaStatus.DELETED: "D",
           pygit2.enums.DeltaStatus.MODIFIED: "M", pygit2.enums.DeltaStatus.TYPECHANGE: "M"}


def _diff_in_repo(repo: pygit2.Repository, old: bytes, new: bytes) -> list[tuple[str, bytes]]:
    a, b = repo[pygit2.Oid(raw=old)], repo[pygit2.Oid(raw=new)]
    if not (isinstance(a, pygit2.Tree) and isinstance(b, pygit2.Tree)):
        raise ValueError("not trees")
    out = []
    for d in a.diff_to_tree(b, flags=pygit2.enums.DiffOption.INCLUDE_TYPECHANGE).deltas:
        status = _STATUS.get(d.status)
        if status is None:
            raise ValueError(f"unexpected delta {d.status}")
        f = d.old_file if status == "D" else d.new_file
        out.append((status, f.raw_path))
    out.sort(key=_diff_key)
    return out


def _diff_py(odb: Odb, old: bytes | None, new: bytes | None) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    stack: list[tuple[bytes | None, bytes | None, bytes]] = [(old, new, b"")]
    while stack:
        old_t, new_t, prefix = stack.pop()
        if old_t == new_t:
            continue
        a = odb.tree(old_t) if old_t else {}
        b = odb.tree(new_t) if new_t else {}
        for name in {n for n, _ in a.items() ^ b.items()}:
            ea, eb = a.get(name), b.get(name)
            p = _join(prefix, name)
            ta = ea[1] if ea and ea[0] == TREE else None
            tb = eb[1] if eb and eb[0] == TREE else None
            if ta or tb:
                stack.append((ta, tb, p))
            if ea and eb and ea[0] != TREE and eb[0] != TREE:
                out.append(("M", p))
            elif ea and ea[0] != TREE:
                out.append(("D", p))
            elif eb and eb[0] != TREE:
                out.append(("A", p))
    out.sort(key=_diff_key)
    return out
