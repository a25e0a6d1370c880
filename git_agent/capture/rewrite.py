"""Commits rewritten as data: trees edited path by path, commits copied onto a new parent with
their author and message kept, and the agent's record (refs/agent-history/<session>)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pygit2

from git_agent import proc
from git_agent.capture.snapshot import FALLBACK_EMAIL, FALLBACK_NAME
from git_agent.capture.tree import Odb, diff_trees
from git_agent.gittree import TREE, Entry
from git_agent.repo import Worktree

# agent/<S> as it was before each apply rewrote it: a chain of record commits, the newest at
# refs/agent-history/<S>; its first parent is the branch as it was, its second the previous
# record. `git agent drop` deletes it with the session.
HISTORY_PREFIX = "refs/agent-history/"


def history_ref(name: str) -> str:
    return HISTORY_PREFIX + name


@dataclass(frozen=True)
class Raw:
    """A commit object, parsed just enough to copy it."""

    tree: bytes
    parents: list[bytes]
    author: bytes  # the header's value, as written
    encoding: bytes | None
    message: bytes


def read_commit(odb: Odb, oid: bytes) -> Raw:
    typ, data = odb.odb.read(pygit2.Oid(raw=oid))
    assert typ == pygit2.GIT_OBJECT_COMMIT, oid.hex()
    data = bytes(data)
    head, _, message = data.partition(b"\n\n")
    tree, parents, author, encoding = b"", [], b"", None
    for line in head.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == b"tree":
            tree = bytes.fromhex(value.decode())
        elif key == b"parent":
            parents.append(bytes.fromhex(value.decode()))
        elif key == b"author":
            author = value
        elif key == b"encoding":
            encoding = value
    return Raw(tree, parents, author, encoding, message)


def user_work(odb: Odb, base: bytes) -> dict[bytes, Entry | None]:
    """The paths a base snapshot holds that its HEAD does not (your uncommitted work when the
    run started), with the snapshot's entry; {} for a base that is a plain commit."""
    c = read_commit(odb, base)
    if not c.message.startswith(b"git agent: base snapshot") or not c.parents:
        return {}
    head_tree = read_commit(odb, c.parents[0]).tree
    return {p: odb.lookup(c.tree, p) for _, p in diff_trees(odb, head_tree, c.tree)}


def above_base(repo: pygit2.Repository, odb: Odb, base: str, tip: str) -> bool:
    """Does tip descend from base, or from the HEAD a base snapshot was made on (the agent's
    own commits start there)?"""
    c = read_commit(odb, bytes.fromhex(base))
    starts = [base]
    if c.message.startswith(b"git agent: base snapshot") and c.parents:
        starts.append(c.parents[0].hex())
    return any(reachable(repo, b, [tip]) for b in starts)


def committer(worktree: Worktree) -> bytes:
    """Who commits (name, email, date), as git itself would say it: `git var`, which reads
    GIT_COMMITTER_* and user.* as `git commit` does; a fallback identity when none is set."""
    out = proc.git("var", "GIT_COMMITTER_IDENT", cwd=worktree.root, check=False).strip()
    if out:
        return out
    off = time.localtime().tm_gmtoff // 60
    sign = "+" if off >= 0 else "-"
    return (f"{FALLBACK_NAME} <{FALLBACK_EMAIL}> {int(time.time())} "
            f"{sign}{abs(off) // 60:02d}{abs(off) % 60:02d}").encode()


def write_commit(odb: Odb, *, tree: bytes, parents: Sequence[bytes], author: bytes,
                 committer: bytes, message: bytes, encoding: bytes | None = None) -> bytes:
    lines = [b"tree " + tree.hex().encode()]
    lines += [b"parent " + p.hex().encode() for p in parents]
    lines += [b"author " + author, b"committer " + committer]
    if encoding is not None:
        lines.append(b"encoding " + encoding)
    return odb.store(pygit2.GIT_OBJECT_COMMIT, b"\n".join(lines) + b"\n\n" + message)


def edit_tree(odb: Odb, tree: bytes | None, changes: Mapping[bytes, Entry | None]
              ) -> bytes | None:
    """tree with each path of changes set to its entry (None: removed); None when empty.
    A path whose entry replaces a dir, or a dir replacing a file, are both handled."""
    entries = dict(odb.tree(tree)) if tree is not None else {}
    below: dict[bytes, dict[bytes, Entry | None]] = {}
    direct: set[bytes] = set()
    for path, e in changes.items():
        name, sep, rest = path.partition(b"/")
        if sep:
            below.setdefault(name, {})[rest] = e
            continue
        direct.add(name)
        if e is None:
            entries.pop(name, None)
        else:
            entries[name] = e
    for name, sub in below.items():
        here = entries.get(name)
        if name in direct and here is not None and here[0] != TREE:
            continue  # a file now stands for the dir whose paths the rest removes
        new = edit_tree(odb, here[1] if here is not None and here[0] == TREE else None, sub)
        if new is None:
            entries.pop(name, None)
        else:
            entries[name] = (TREE, new)
    if not entries:
        return None
    return odb.write_tree(entries)


def tree_entries(odb: Odb, tree: bytes, paths: Sequence[bytes]) -> dict[bytes, Entry | None]:
    return {p: odb.lookup(tree, p) for p in paths}


def replay(odb: Odb, *, onto: bytes, commits: Sequence[bytes], who: bytes,
           keep: Callable[[bytes], bool] = lambda _p: True,
           note: Callable[[int], bytes] | None = None) -> tuple[bytes, bytes]:
    """Copy commits (oldest first) onto `onto`, each changing only the paths it changed
    against its first parent for which keep(path) holds, with that commit's version of them;
    one that keeps nothing is left out. Author and message kept, `who` commits; note(n) is
    added to the message of a commit that lost n of its paths. Returns (tip, its tree)."""
    tip = onto
    tip_tree = read_commit(odb, onto).tree
    for oid in commits:
        c = read_commit(odb, oid)
        before = read_commit(odb, c.parents[0]).tree if c.parents else None
        touched = [p for _, p in diff_trees(odb, before, c.tree)]
        kept = [p for p in touched if keep(p)]
        if not kept:
            continue
        new_tree = (edit_tree(odb, tip_tree, tree_entries(odb, c.tree, kept))
                    or odb.write_tree({}))
        if new_tree == tip_tree:
            continue
        message = c.message
        if note is not None and len(kept) < len(touched):
            message = _with_note(message, note(len(touched) - len(kept)))
        tip = write_commit(odb, tree=new_tree, parents=[tip], author=c.author, committer=who,
                           message=message, encoding=c.encoding)
        tip_tree = new_tree
    return tip, tip_tree


def _with_note(message: bytes, line: bytes) -> bytes:
    """line added before the message's trailers (a last paragraph of `Key: value` lines)."""
    body = message.rstrip(b"\n")
    head, sep, last = body.rpartition(b"\n\n")
    if sep and all(re.match(rb"^[A-Za-z0-9-]+: ", x) for x in last.split(b"\n")):
        return head + b"\n\n" + line + b"\n\n" + last + b"\n"
    return body + b"\n\n" + line + b"\n"


class LooseOdb(Odb):
    """An Odb whose objects are readable at once (loose): for the few of a landing, which
    pygit2's merge reads back."""

    def store(self, typ: int, data: bytes, known: tuple[bytes | None, ...] = ()) -> bytes:
        oid: bytes = self.odb.write(typ, data).raw
        return oid


def new_odb(worktree: Worktree, *, loose: bool = False) -> tuple[pygit2.Repository, Odb]:
    repo = pygit2.Repository(str(worktree.root))
    return repo, (LooseOdb if loose else Odb)(repo, worktree.common_dir / "objects")


def reachable(repo: pygit2.Repository, oid: str, tips: Sequence[str | None]) -> bool:
    """Is oid one of tips or an ancestor of one?"""
    return any(t is not None and (t == oid or repo.descendant_of(t, oid)) for t in tips)


def unrecorded(worktree: Worktree, tip: str, known: Sequence[str | None]) -> list[bytes]:
    """The commits of tip's first-parent line that none of `known` reaches, oldest first."""
    out = proc.git("rev-list", "--first-parent", "--reverse", tip, "--not",
                   *[k for k in known if k is not None], "--", cwd=worktree.root)
    return [bytes.fromhex(x) for x in out.decode().split()]
