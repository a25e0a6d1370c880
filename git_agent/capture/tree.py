"""The upper dir read as a tree: the base tree with the upper's changes applied, rewriting
only the touched subtrees (cost: O(paths changed)), new objects written through one pack; and
the diff of two trees. Walks on explicit stacks: no recursion on the tree's depth."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pygit2

from git_agent import beneath, gittree, ui
from git_agent.capture import ignore, overlay, pack
from git_agent.capture.overlay import Change, Kind
from git_agent.errors import GitAgentError
from git_agent.gittree import BLOB, EXEC, LINK, MAX_BLOB, TREE, Entry, parse_tree
from git_agent.repo import Worktree


def _join(a: bytes, b: bytes) -> bytes:
    return a + b"/" + b if a else b


def _sort_key(item: tuple[bytes, Entry]) -> bytes:
    return item[0] + b"/" if item[1][0] == TREE else item[0]


class Odb:
    """Raw tree reading and writing: names stay bytes (pygit2's TreeBuilder wants UTF-8).

    New objects go to `out` (one pack past a few objects): readable by git after
    `out.finish()`; the trees written are kept here to be read back meanwhile."""

    def __init__(self, repo: pygit2.Repository, objects_dir: Path):
        self.repo = repo
        self.odb = repo.odb
        self._trees: dict[bytes, dict[bytes, Entry]] = {}
        self.out = pack.Writer(objects_dir, self._write_loose)

    def _write_loose(self, typ: int, data: bytes) -> bytes:
        oid: bytes = self.odb.write(typ, data).raw
        return oid

    def store(self, typ: int, data: bytes, known: tuple[bytes | None, ...] = ()) -> bytes:
        """The object's id; written unless it is one of `known` (ids the repository has).

        Copy-ups and recaptures hold what the base or the last capture has at the same path:
        they are recognised by id and cost no zlib. (Asking the object store instead costs
        more than writing: libgit2 rescans the pack directory on every miss.)"""
        oid = pack.object_id(typ, data)
        if oid not in known:
            self.out.write(typ, data, oid)
        return oid

    def has(self, oid: bytes) -> bool:
        """Is the object in the repository already (not only in the pack being written)?"""
        return pygit2.Oid(raw=oid) in self.odb

    def tree(self, oid: bytes) -> dict[bytes, Entry]:
        got = self._trees.get(oid)
        if got is None:
            typ, data = self.odb.read(pygit2.Oid(raw=oid))
            if typ != pygit2.GIT_OBJECT_TREE:
                raise GitAgentError(f"object {oid.hex()} is not a tree")
            got = parse_tree(data)
            self._trees[oid] = got
        return got

    def write_tree(self, entries: dict[bytes, Entry], known: tuple[bytes | None, ...] = ()
                   ) -> bytes:
        data = b"".join(b"%o %s\0%s" % (m, n, o)
                        for n, (m, o) in sorted(entries.items(), key=_sort_key))
        oid = self.store(pygit2.GIT_OBJECT_TREE, data, known)
        self._trees[oid] = dict(entries)
        return oid

    def write_blob(self, data: bytes, known: tuple[bytes | None, ...] = ()) -> bytes:
        return self.store(pygit2.GIT_OBJECT_BLOB, data, known)

    def lookup(self, root: bytes | None, path: bytes) -> Entry | None:
        entry: Entry | None = (TREE, root) if root is not None else None
        for part in path.split(b"/") if path else []:
            if entry is None or entry[0] != TREE:
                return None
            entry = self.tree(entry[1]).get(part)
        return entry


class _Node:
    """A directory of the upper: its changed children, and whether it hides the lower dir."""

    __slots__ = ("opaque", "redirect", "children")

    def __init__(self, opaque: bool = False, redirect: bytes | None = None):
        self.opaque = opaque
        self.redirect = redirect
        self.children: dict[bytes, _Node | Change] = {}


def read_upper(upper: Path, warnings: list[str]) -> tuple[_Node, int]:
    """Step 1: the upper as a tree of changes, and how many files and links it holds."""
    report = overlay.Walk()
    root = _Node()
    nodes: dict[bytes, _Node] = {b"": root}
    files = 0
    for ch in overlay.walk(upper, report=report):
        parent, _, name = ch.path.rpartition(b"/")
        holder = nodes.get(parent)
        if holder is None:
            continue
        if ch.kind in (Kind.DIR, Kind.OPAQUE_DIR):
            node = _Node(ch.kind is Kind.OPAQUE_DIR, ch.redirect)
            nodes[ch.path] = node
            holder.children[name] = node
        else:
            holder.children[name] = ch
            files += ch.kind in (Kind.FILE, Kind.SYMLINK)
    warnings.extend(report.warnings)
    return root, files


_MAX_IGNORE_FILE = 100 << 20  # git does not read a bigger .gitignore either


class _Frame:
    """One directory of the build in progress: its entries, and the children left to do."""

    __slots__ = ("node", "base", "path", "entries", "todo", "pending")

    def __init__(self, node: _Node, base: bytes | None, path: bytes,
                 entries: dict[bytes, Entry]):
        self.node = node
        self.base = base
        self.path = path
        self.entries = entries
        self.todo = list(reversed(node.children.items()))
        self.pending: bytes | None = None  # the child dir being built, by name


class TreeBuilder:
    """Step 2: applies the upper's change tree to the base tree (an explicit stack: a tree
    of any depth builds)."""

    def __init__(self, *, odb: Odb, worktree: Worktree, upper_fd: int,
                 base_tree: bytes, changes: _Node, warnings: list[str],
                 prev_tree: bytes | None = None, progress: ui.Progress | None = None):
        self.odb = odb
        self.progress = progress or ui.Progress("capturing", 0)
        self.root = worktree.root
        self.upper_fd = upper_fd  # every read of the upper goes through it (beneath)
        self._dir: tuple[bytes, int] | None = None  # the upper dir read last, and its fd
        self._lower_fd: int | None = None  # the worktree, for .gitignore files not in the upper
        self.base_tree = base_tree
        self.prev_tree = prev_tree  # the last capture's: its objects need no writing again
        self.changes = changes
        self.warnings = warnings
        self.ignored = 0
        self.rules = ignore.Rules(
            load_gitignore=self._gitignore,
            exclude=ignore.host_excludes(root=worktree.root, common_dir=worktree.common_dir),
        )

    # -- the merged view (upper over the worktree), for .gitignore files as the agent left them
    def _gitignore(self, d: bytes) -> bytes | None:
        path = _join(d, b".gitignore")
        node: _Node | Change = self.changes
        hidden = False  # an opaque upper dir on the way hides the lower
        for part in path.split(b"/"):
            if not isinstance(node, _Node):
                return None
            hidden = hidden or node.opaque
            nxt = node.children.get(part)
            if nxt is None:
                return None if hidden else self._lower_file(path)
            node = nxt
        if isinstance(node, Change) and node.kind is Kind.FILE:
            try:
                got = self.read_entry(node)
            except OSError:
                return None
            return got[1] if got is not None else None
        return None  # a symlinked .gitignore is not followed (git >= 2.32), a whiteout deletes

    def _lower_file(self, path: bytes) -> bytes | None:
        """A regular file of the worktree (the overlay's lower), no symlink followed: an
        untracked .gitignore too (a self-ignoring .pytest_cache/.gitignore saying `*`)."""
        try:
            if self._lower_fd is None:
                self._lower_fd = beneath.open_root(self.root)
        except OSError:
            return None
        return beneath.read_regular(self._lower_fd, path, _MAX_IGNORE_FILE)

    def _parent(self, path: bytes) -> tuple[int, bytes]:
        """(an fd on the upper dir holding path, its name): reached through beneath, reused
        for the next path in the same dir (the build goes dir by dir)."""
        d, _, name = path.rpartition(b"/")
        if self._dir is None or self._dir[0] != d:
            self.close()
            self._dir = (d, beneath.open_dir(self.upper_fd, d))
        return self._dir[1], name

    def close(self) -> None:
        if self._dir is not None:
            os.close(self._dir[1])
            self._dir = None
        if self._lower_fd is not None:
            os.close(self._lower_fd)
            self._lower_fd = None

    def read_entry(self, ch: Change) -> tuple[int, bytes] | None:
        """One upper file or symlink as (git mode, bytes): the one read of an entry.
        None (with a warning) when a file is above MAX_BLOB."""
        if ch.kind is Kind.SYMLINK:
            dir_fd, name = self._parent(ch.path)
            return LINK, beneath.readlink(dir_fd, name)
        if ch.metacopy:  # data still in the lower file
            self.warnings.append(
                f"{ui.quote_path(ch.path)}: metacopy upper, data read from the lower")
            fd = os.open(os.path.join(os.fsencode(self.root), ch.path), beneath.FILE_FLAGS)
        else:
            dir_fd, name = self._parent(ch.path)
            fd = os.open(name, beneath.FILE_FLAGS, dir_fd=dir_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FileNotFoundError(ch.path)
            data = beneath.read_fd(fd, MAX_BLOB, st.st_size) if st.st_size <= MAX_BLOB else None
        finally:
            os.close(fd)
        if data is None:
            self.warnings.append(
                f"skipped {ui.quote_path(ch.path)}: bigger than {MAX_BLOB >> 20} MiB (left in the "
                "session, not captured)")
            return None
        return (EXEC if st.st_mode & stat.S_IXUSR else BLOB), data

    def _known(self, path: bytes, *entries: Entry | None) -> tuple[bytes | None, ...]:
        """Ids the repository has at path: in entries, and in the last capture."""
        prev = self.odb.lookup(self.prev_tree, path) if self.prev_tree is not None else None
        return tuple(e[1] if e is not None else None for e in (*entries, prev))

    def _blob(self, ch: Change, known: tuple[bytes | None, ...]) -> Entry | None:
        self.progress.step()
        try:
            got = self.read_entry(ch)
        except (FileNotFoundError, NotADirectoryError):
            return None  # removed by a still-running sandbox
        except OSError as e:
            if e.errno == errno.ELOOP:  # a dir swapped for a symlink: never followed
                self.warnings.append(f"skipped {ui.quote_path(ch.path)}: changed while capturing")
                return None
            self.warnings.append(f"skipped {ui.quote_path(ch.path)}: {e.strerror}")
            return None
        if got is None:
            return None
        mode, data = got
        return mode, self.odb.write_blob(data, known)

    def build(self) -> bytes:
        """The new root tree: directories done deepest first, from a stack of frames."""
        stack = [self._enter(self.changes, self.base_tree, b"")]
        while True:
            frame = stack[-1]
            child = self._next_dir(frame)
            if child is not None:
                stack.append(child)
                continue
            stack.pop()
            tree = self._finish(frame)
            if not stack:
                return tree or self.odb.write_tree({})
            parent = stack[-1]
            assert parent.pending is not None
            if tree is None:
                parent.entries.pop(parent.pending, None)
            else:
                parent.entries[parent.pending] = (TREE, tree)
            parent.pending = None

    def _enter(self, node: _Node, base: bytes | None, path: bytes) -> _Frame:
        if node.redirect is not None:
            src = node.redirect.lstrip(b"/") if node.redirect.startswith(b"/") else _join(
                path.rpartition(b"/")[0], node.redirect)
            found = self.odb.lookup(self.base_tree, src)
            base = found[1] if found and found[0] == TREE else None
        entries = {} if node.opaque or base is None else dict(self.odb.tree(base))
        return _Frame(node, base, path, entries)

    def _next_dir(self, frame: _Frame) -> _Frame | None:
        """Apply frame's file changes up to its next changed subdirectory; that one's frame."""
        entries = frame.entries
        while frame.todo:
            name, ch = frame.todo.pop()
            sub = _join(frame.path, name)
            if self._left_out(sub, name, ch):
                continue
            old = entries.get(name)
            if isinstance(ch, _Node):
                frame.pending = name
                return self._enter(ch, old[1] if old and old[0] == TREE else None, sub)
            if ch.kind is Kind.WHITEOUT:
                entries.pop(name, None)
                continue
            tracked = self.odb.lookup(self.base_tree, sub)
            if (tracked is None or tracked[0] == TREE) and self.rules.ignored(sub):
                self.ignored += 1  # stays in the upper, as git would leave it untracked
                continue
            blob = self._blob(ch, self._known(sub, old, tracked))
            if blob is not None:  # None: gone meanwhile, the lower shows through again
                entries[name] = blob
        return None

    def _left_out(self, sub: bytes, name: bytes, ch: _Node | Change) -> bool:
        """Names that would make git read another repository or config stay in the session,
        with a warning: any spelling of .git (a nested repository or gitfile, .GIT, git~1,
        .git. ...), and a .gitmodules the session adds or changes (a deletion is kept)."""
        if gittree.is_dotgit(name):
            self.warnings.append(f"left out {ui.quote_path(sub)}: a spelling of .git, git would "
                                 "take it for another repository (it stays in the session)")
            return True
        if gittree.is_dotgitmodules(name) and (isinstance(ch, _Node)
                                               or ch.kind is not Kind.WHITEOUT):
            self.warnings.append(f"left out {ui.quote_path(sub)}: .gitmodules makes git fetch and "
                                 "configure other repositories (it stays in the session)")
            return True
        return False

    def _no_gitdir(self, frame: _Frame) -> None:
        """A directory git would take for a repository (HEAD beside objects, refs or
        commondir): the entries of that shape the session added or changed are left out,
        and so is its config (what would run: core.fsmonitor, hooksPath...)."""
        if not gittree.makes_gitdir(frame.entries):
            return
        base = self.odb.tree(frame.base) if frame.base is not None else {}
        for name in sorted(frame.entries):
            if (gittree.repository_name(name) or name.lower() == b"config") \
                    and frame.entries[name] != base.get(name):
                self.warnings.append(
                    f"left out {ui.quote_path(_join(frame.path, name))}: beside "
                    "HEAD/objects/refs, git would take the directory for another repository "
                    "(it stays in the session)")
                if name in base:
                    frame.entries[name] = base[name]
                else:
                    del frame.entries[name]

    def _finish(self, frame: _Frame) -> bytes | None:
        self._no_gitdir(frame)
        if not frame.entries:
            return None
        here = (TREE, frame.base) if frame.base is not None else None
        return self.odb.write_tree(frame.entries, self._known(frame.path, here))


# -- commits and refs
