"""Capture: turn a session's overlay upper into a commit on agent/<session>.

The tree is the base tree with the upper's changes applied, rewriting only the touched
subtrees (cost: O(paths changed); the real worktree is never walked). Commits the agent made
inside the sandbox are imported as data from the upper's object store. The branch moves last,
by compare-and-swap, so a capture killed at any point leaves it old or complete.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import stat
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from git_agent import beneath, gitpath, ignore, overlay, pack, proc, ui
from git_agent.base import FALLBACK_EMAIL, FALLBACK_NAME, ZERO_OID, Base, keep
from git_agent.base import read as base_ref
from git_agent.errors import GitAgentError
from git_agent.overlay import Change, Kind
from git_agent.overlay import show as _show
from git_agent.repo import Worktree
from git_agent.session import Session

TREE, BLOB, EXEC, LINK, GITLINK = 0o40000, 0o100644, 0o100755, 0o120000, 0o160000
_MODES = (TREE, BLOB, EXEC, LINK, GITLINK)
MAX_FILE = 1 << 30  # a bigger file is left in the upper with a warning, never read whole
_MAX_IMPORT = 100_000

Entry = tuple[int, bytes]  # (mode, raw 20-byte oid)


@dataclass
class CaptureResult:
    commit: str | None  # the branch tip after capture (None: nothing captured, no branch)
    unchanged: bool  # no new commit: same tree as the last capture of this base
    added: int = 0  # paths, relative to the base
    modified: int = 0
    deleted: int = 0
    imported: int = 0  # the agent's own commits brought into the repository
    ignored: int = 0  # new paths left in the upper by the ignore rules
    squashed: bool = False  # the agent's history did not descend from the base
    warnings: list[str] = field(default_factory=list)
    summary: str = ""


def _join(a: bytes, b: bytes) -> bytes:
    return a + b"/" + b if a else b


def _sort_key(item: tuple[bytes, Entry]) -> bytes:
    return item[0] + b"/" if item[1][0] == TREE else item[0]


class _Odb:
    """Raw tree reading and writing: names stay bytes (pygit2's TreeBuilder wants UTF-8).

    New objects go to `out` (one pack past a few objects): readable by git after
    `out.finish()`; the trees written are kept here to be read back meanwhile."""

    def __init__(self, repo: pygit2.Repository, objects_dir: Path):
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


def parse_tree(data: bytes) -> dict[bytes, Entry]:
    out: dict[bytes, Entry] = {}
    i = 0
    while i < len(data):
        sp = data.index(b" ", i)
        nul = data.index(b"\0", sp)
        out[data[sp + 1 : nul]] = (int(data[i:sp], 8), data[nul + 1 : nul + 21])
        i = nul + 21
    return out


class _Node:
    """A directory of the upper: its changed children, and whether it hides the lower dir."""

    __slots__ = ("opaque", "redirect", "children")

    def __init__(self, opaque: bool = False, redirect: bytes | None = None):
        self.opaque = opaque
        self.redirect = redirect
        self.children: dict[bytes, _Node | Change] = {}


def _changes(upper: Path, warnings: list[str]) -> tuple[_Node, int]:
    """The upper as a tree of changes, and how many files and links it holds."""
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


class _Builder:
    """Applies the upper's change tree to the base tree."""

    def __init__(self, *, odb: _Odb, worktree: Worktree, upper_fd: int,
                 base_tree: bytes, changes: _Node, warnings: list[str],
                 prev_tree: bytes | None = None, progress: ui.Progress | None = None):
        self.odb = odb
        self.progress = progress or ui.Progress("capturing", 0)
        self.root = worktree.root
        self.upper_fd = upper_fd  # every read of the upper goes through it (beneath)
        self._dir: tuple[bytes, int] | None = None  # the upper dir read last, and its fd
        self.base_tree = base_tree
        self.prev_tree = prev_tree  # the last capture's: its objects need no writing again
        self.changes = changes
        self.warnings = warnings
        self.ignored = 0
        self.rules = ignore.Rules(
            load_gitignore=self._gitignore,
            exclude=ignore.host_excludes(root=worktree.root, common_dir=worktree.common_dir),
        )

    # -- the merged view, for .gitignore files as the agent left them
    def _gitignore(self, d: bytes) -> bytes | None:
        path = _join(d, b".gitignore")
        node: _Node | Change = self.changes
        hidden = False
        for part in path.split(b"/"):
            if not isinstance(node, _Node):
                return None
            hidden = hidden or node.opaque
            nxt = node.children.get(part)
            if nxt is None:
                if hidden:
                    return None
                entry = self.odb.lookup(self.base_tree, path)
                if entry is None or entry[0] not in (BLOB, EXEC):
                    return None
                data: bytes = self.odb.odb.read(pygit2.Oid(raw=entry[1]))[1]
                return data
            node = nxt
        if isinstance(node, Change) and node.kind is Kind.FILE:
            try:
                got = self._read(node)
            except OSError:
                return None
            return got[0] if got is not None else None
        return None  # a symlinked .gitignore is not followed (git >= 2.32), a whiteout deletes

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

    def _read(self, ch: Change) -> tuple[bytes, int] | None:
        """The file's data and mode; None (with a warning) when it is above MAX_FILE."""
        if ch.metacopy:  # data still in the lower file
            self.warnings.append(f"{_show(ch.path)!r}: metacopy upper, data read from the lower")
            fd = os.open(os.path.join(os.fsencode(self.root), ch.path), beneath.FILE_FLAGS)
        else:
            dir_fd, name = self._parent(ch.path)
            fd = os.open(name, beneath.FILE_FLAGS, dir_fd=dir_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FileNotFoundError(ch.path)
            data = beneath.read_fd(fd, MAX_FILE, st.st_size) if st.st_size <= MAX_FILE else None
        finally:
            os.close(fd)
        if data is None:
            self.warnings.append(
                f"skipped {_show(ch.path)!r}: bigger than {MAX_FILE >> 20} MiB (left in the "
                "session, not captured)")
            return None
        return data, st.st_mode

    def _known(self, path: bytes, *entries: Entry | None) -> tuple[bytes | None, ...]:
        """Ids the repository has at path: in entries, and in the last capture."""
        prev = self.odb.lookup(self.prev_tree, path) if self.prev_tree is not None else None
        return tuple(e[1] if e is not None else None for e in (*entries, prev))

    def _blob(self, ch: Change, known: tuple[bytes | None, ...]) -> Entry | None:
        self.progress.step()
        try:
            if ch.kind is Kind.SYMLINK:
                dir_fd, name = self._parent(ch.path)
                target = beneath.readlink(dir_fd, name)
                return LINK, self.odb.write_blob(target, known)
            got = self._read(ch)
        except (FileNotFoundError, NotADirectoryError):
            return None  # removed by a still-running sandbox
        except OSError as e:
            if e.errno == errno.ELOOP:  # a dir swapped for a symlink: never followed
                self.warnings.append(f"skipped {_show(ch.path)!r}: changed while capturing")
                return None
            self.warnings.append(f"skipped {_show(ch.path)!r}: {e.strerror}")
            return None
        if got is None:
            return None
        data, mode = got
        return (EXEC if mode & stat.S_IXUSR else BLOB), self.odb.write_blob(data, known)

    def build(self) -> bytes:
        return self._build(self.changes, self.base_tree, b"") or self.odb.write_tree({})

    def _build(self, node: _Node, base: bytes | None, path: bytes) -> bytes | None:
        if node.redirect is not None:
            src = node.redirect.lstrip(b"/") if node.redirect.startswith(b"/") else _join(
                path.rpartition(b"/")[0], node.redirect)
            found = self.odb.lookup(self.base_tree, src)
            base = found[1] if found and found[0] == TREE else None
        entries = {} if node.opaque or base is None else dict(self.odb.tree(base))
        for name, ch in node.children.items():
            sub = _join(path, name)
            if gitpath.is_dotgit(name):  # a nested repository, or .GIT, git~1, .git. ...
                self.warnings.append(f"left out {_show(sub)!r}: git refuses it as a spelling "
                                     "of .git (it stays in the session)")
                continue
            if gitpath.is_dotgitmodules(name) and not isinstance(ch, _Node) \
                    and ch.kind is Kind.SYMLINK:
                self.warnings.append(f"left out {_show(sub)!r}: git refuses a symlinked "
                                     ".gitmodules (it stays in the session)")
                continue
            old = entries.get(name)
            if isinstance(ch, _Node):
                new = self._build(ch, old[1] if old and old[0] == TREE else None, sub)
                if new is None:
                    entries.pop(name, None)
                else:
                    entries[name] = (TREE, new)
            elif ch.kind is Kind.WHITEOUT:
                entries.pop(name, None)
            else:
                tracked = self.odb.lookup(self.base_tree, sub)
                if (tracked is None or tracked[0] == TREE) and self.rules.ignored(sub):
                    self.ignored += 1  # stays in the upper, as git would leave it untracked
                    continue
                blob = self._blob(ch, self._known(sub, old, tracked))
                if blob is not None:  # None: gone meanwhile, the lower shows through again
                    entries[name] = blob
        if not entries:
            return None
        here = (TREE, base) if base is not None else None
        return self.odb.write_tree(entries, self._known(path, here))


def diff_trees(odb: _Odb, old: bytes | None, new: bytes | None, prefix: bytes = b""
               ) -> list[tuple[str, bytes]]:
    """(A|M|D, path) for every file that differs; equal subtrees are skipped by oid."""
    if old == new:
        return []
    a = odb.tree(old) if old else {}
    b = odb.tree(new) if new else {}
    out: list[tuple[str, bytes]] = []
    for name in sorted({n for n, _ in a.items() ^ b.items()}):
        ea, eb = a.get(name), b.get(name)
        p = _join(prefix, name)
        ta = ea[1] if ea and ea[0] == TREE else None
        tb = eb[1] if eb and eb[0] == TREE else None
        if ta or tb:
            out.extend(diff_trees(odb, ta, tb, p))
        if ea and eb and ea[0] != TREE and eb[0] != TREE:
            out.append(("M", p))
        elif ea and ea[0] != TREE:
            out.append(("D", p))
        elif eb and eb[0] != TREE:
            out.append(("A", p))
    return out


# -- the sandbox's git dir, read as an overlay (upper over the real git dir)


def _upper_root(*, worktree: Worktree, session: Session, real: Path) -> tuple[Path, str] | None:
    """(the overlay upper root a write to real lands in, real's path below it), as
    session.upper_of: the root is ours, the path below it the agent's to change."""
    for lower, upper in ((worktree.root, session.upper), (worktree.common_dir, session.git_upper)):
        if real == lower or lower in real.parents:
            rel = real.relative_to(lower)
            return upper, "" if rel == Path(".") else rel.as_posix()
    return None


def _merged(*, worktree: Worktree, session: Session, real: Path) -> overlay.MergedDir | None:
    found = _upper_root(worktree=worktree, session=session, real=real)
    if found is None:
        return None
    up, under = found
    low = real
    for _ in under.split("/") if under else ():
        low = low.parent
    return overlay.MergedDir(upper=up, lower=low, under=under)


_HEX = re.compile(rb"^[0-9a-f]{40}$")


def agent_head(*, worktree: Worktree, session: Session) -> str | None:
    """The commit HEAD points at inside the sandbox (merged view), or None."""
    gdir = _merged(worktree=worktree, session=session, real=worktree.git_dir)
    common = _merged(worktree=worktree, session=session, real=worktree.common_dir)
    if gdir is None or common is None:
        return None
    text = (gdir.read("HEAD") or b"").strip()
    for _ in range(5):
        if _HEX.match(text):
            return text.decode()
        if not text.startswith(b"ref:"):
            return None
        ref = text[4:].strip().decode(errors="replace")
        if ".." in ref or not ref.startswith("refs/"):
            return None
        loose = common.read(ref)
        if loose is not None:
            text = loose.strip()
            continue
        for line in (common.read("packed-refs") or b"").splitlines():
            oid, _, name = line.partition(b" ")
            if name.decode(errors="replace") == ref and _HEX.match(oid):
                return oid.decode()
        return None
    return None


_MAX_PACKS = 128


class _SandboxObjects:
    """The upper's object store (loose + packs) opened read-only as data.

    The agent controls every path below the upper root: nothing there is followed. Each pack
    and index is opened through beneath (no symlink in any component), checked to be a regular
    file, and libgit2 reads it through a private dir of links to /proc/self/fd/N, which name
    exactly the opened files. Loose objects are read here, the same way. A symlink or other
    non-regular entry where the store's dirs or files should be refuses the whole store
    (ValueError: the agent's history is then squashed)."""

    def __init__(self, upper: Path, under: bytes):
        self._fds: list[int] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="git-agent-odb-")
        self.odb = pygit2.Odb()
        self._objects: int | None = None
        try:
            self._open(upper, under)
        except BaseException:
            self.close()
            raise

    def _open(self, upper: Path, under: bytes) -> None:
        root = beneath.open_root(upper)
        try:
            self._objects = beneath.open_dir(root, under)
        except FileNotFoundError:
            return  # no object written in the sandbox
        except OSError as e:
            raise ValueError(f"the sandbox's object store is not a plain directory ({e.strerror})"
                             ) from e
        finally:
            os.close(root)
        try:
            pack_fd = beneath.open_dir(self._objects, b"pack")
        except FileNotFoundError:
            return
        except OSError as e:
            raise ValueError(f"the sandbox's pack dir is not a plain directory ({e.strerror})"
                             ) from e
        packs = Path(self._tmp.name) / "pack"
        packs.mkdir()
        found = 0
        try:
            names = {n: st for n, st in beneath.scan(pack_fd)}
            for n in sorted(names):
                if not n.endswith(b".idx") or not self._wanted(names[n], n):
                    continue
                pk = n[:-4] + b".pack"
                if pk not in names or not self._wanted(names[pk], pk):
                    continue
                found += 1
                if found > _MAX_PACKS:
                    raise ValueError("too many packs in the sandbox")
                for name in (n, pk):
                    fd = self._open_regular(pack_fd, name)
                    os.symlink(beneath.proc_path(fd), packs / os.fsdecode(name))
        finally:
            os.close(pack_fd)
        if found:
            self.odb.add_backend(pygit2.OdbBackendPack(self._tmp.name), 2)

    @staticmethod
    def _wanted(st: os.stat_result, name: bytes) -> bool:
        """Use this pack file? Whiteouts (and empty xattr whiteouts) are skipped; anything
        else that is not a regular file refuses the store."""
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return False
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{_show(name)!r} in the sandbox's pack dir is not a regular file")
        return st.st_size > 0

    def _open_regular(self, dir_fd: int, name: bytes) -> int:
        try:
            fd = os.open(name, beneath.FILE_FLAGS, dir_fd=dir_fd)
        except OSError as e:
            raise ValueError(f"cannot open {_show(name)!r} in the sandbox's object store "
                             f"({e.strerror})") from e
        self._fds.append(fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{_show(name)!r} in the sandbox's object store is not a file")
        return fd

    def read(self, oid: bytes) -> tuple[int, bytes]:
        try:
            typ, data = self.odb.read(pygit2.Oid(raw=oid))
            return int(typ), bytes(data)
        except KeyError:
            pass
        got = self._loose(oid)
        if got is None:
            raise KeyError(oid.hex())
        return got

    def _loose(self, oid: bytes) -> tuple[int, bytes] | None:
        if self._objects is None:
            return None
        hexa = oid.hex().encode()
        try:
            fd = beneath.open_file(self._objects, hexa[:2] + b"/" + hexa[2:])
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise ValueError(f"loose object {oid.hex()} in the sandbox: {e.strerror}") from e
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if stat.S_ISCHR(st.st_mode):
                    return None  # a whiteout
                raise ValueError(f"loose object {oid.hex()} in the sandbox is not a file")
            raw = beneath.read_fd(fd, MAX_FILE, st.st_size)
        finally:
            os.close(fd)
        if raw is None:
            raise ValueError(f"loose object {oid.hex()} in the sandbox is too big")
        return _inflate_loose(raw, oid)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        if self._objects is not None:
            os.close(self._objects)
            self._objects = None
        self._tmp.cleanup()


_LOOSE_TYPES = {b"commit": pygit2.GIT_OBJECT_COMMIT, b"tree": pygit2.GIT_OBJECT_TREE,
                b"blob": pygit2.GIT_OBJECT_BLOB, b"tag": pygit2.GIT_OBJECT_TAG}


def _inflate_loose(raw: bytes, oid: bytes) -> tuple[int, bytes]:
    """A loose object's (type, data), checked to hash to oid; at most MAX_FILE inflated."""
    z = zlib.decompressobj()
    try:
        out = z.decompress(raw, MAX_FILE + 64)
    except zlib.error as e:
        raise ValueError(f"loose object {oid.hex()} is corrupt ({e})") from e
    if z.unconsumed_tail:
        raise ValueError(f"loose object {oid.hex()} is too big")
    head, nul, data = out.partition(b"\0")
    kind, _, size = head.partition(b" ")
    typ = _LOOSE_TYPES.get(kind)
    if not nul or typ is None or not size.isdigit() or int(size) != len(data) or \
            pack.object_id(typ, data) != oid:
        raise ValueError(f"loose object {oid.hex()} is corrupt")
    return typ, data


def _bad_name(name: bytes, mode: int) -> bool:
    return name in (b"", b".", b"..") or b"/" in name or b"\0" in name or \
        gitpath.is_dotgit(name) or (mode == LINK and gitpath.is_dotgitmodules(name))


def _commit_parents(data: bytes) -> tuple[bytes, list[bytes]]:
    head = data.split(b"\n\n", 1)[0]
    tree = b""
    parents = []
    for line in head.split(b"\n"):
        if line.startswith(b"tree "):
            tree = bytes.fromhex(line[5:].decode())
        elif line.startswith(b"parent "):
            parents.append(bytes.fromhex(line[7:].decode()))
    return tree, parents


class _Importer:
    """Copy the agent's commits (and their trees and blobs) from the sandbox store."""

    def __init__(self, repo: pygit2.Repository, sandbox: _SandboxObjects):
        self.repo = repo
        self.sandbox = sandbox
        self.pending: list[tuple[int, bytes, bytes]] = []  # (type, data, oid) in write order
        self.queued: set[bytes] = set()

    def have(self, oid: bytes) -> bool:
        return oid in self.queued or pygit2.Oid(raw=oid) in self.repo.odb

    def commits(self, tip: bytes) -> tuple[list[bytes], set[bytes]]:
        """The commits reachable from tip missing here, and the known commits they reach."""
        new: list[bytes] = []
        boundary: set[bytes] = set()
        seen: set[bytes] = set()
        stack = [tip]
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            if pygit2.Oid(raw=c) in self.repo.odb:
                boundary.add(c)
                continue
            if len(new) > _MAX_IMPORT:
                raise ValueError("too many commits")
            typ, data = self.sandbox.read(c)
            if typ != pygit2.GIT_OBJECT_COMMIT:
                raise ValueError(f"{c.hex()} is not a commit")
            new.append(c)
            stack.extend(_commit_parents(data)[1])
        return new, boundary

    def queue(self, typ: int, oid: bytes) -> None:
        """Queue oid and everything it needs that is missing here (trees checked for names)."""
        stack = [(typ, oid, False)]
        while stack:
            t, o, expanded = stack.pop()
            if self.have(o):
                continue
            if expanded:
                self.queued.add(o)
                self.pending.append((t, self.sandbox.read(o)[1], o))
                continue
            rt, data = self.sandbox.read(o)
            if rt != t:
                raise ValueError(f"{o.hex()}: expected object type {t}, found {rt}")
            stack.append((t, o, True))
            if t == pygit2.GIT_OBJECT_TREE:
                for name, (mode, sub) in parse_tree(data).items():
                    if _bad_name(name, mode) or mode not in _MODES:
                        raise ValueError(f"tree {o.hex()} has an unsafe entry {_show(name)!r}")
                    if mode == TREE:
                        stack.append((pygit2.GIT_OBJECT_TREE, sub, False))
                    elif mode != GITLINK:
                        stack.append((pygit2.GIT_OBJECT_BLOB, sub, False))
            elif t == pygit2.GIT_OBJECT_COMMIT:
                stack.append((pygit2.GIT_OBJECT_TREE, _commit_parents(data)[0], False))

    def write(self) -> None:
        for typ, data, oid in self.pending:
            got: bytes = self.repo.odb.write(typ, data).raw
            if got != oid:
                raise ValueError(f"object {oid.hex()} does not hash to its name")


# -- commits and refs


def _identity(repo: pygit2.Repository) -> tuple[str, str]:
    cfg = repo.config

    def get(key: str) -> str | None:
        try:
            v = cfg[key]
        except (KeyError, ValueError):
            return None
        return str(v) if v else None

    name = get("agent.authorName") or get("user.name") or FALLBACK_NAME
    email = get("agent.authorEmail") or get("user.email") or FALLBACK_EMAIL
    return name, email


def _when(var: str) -> bytes:
    v = os.environ.get(var, "")
    if re.fullmatch(r"@?\d+ [+-]\d{4}", v):
        return v.lstrip("@").encode()
    now = time.time()
    off = time.localtime(now).tm_gmtoff // 60
    sign = "+" if off >= 0 else "-"
    return f"{int(now)} {sign}{abs(off) // 60:02d}{abs(off) % 60:02d}".encode()


def _clean(text: str) -> bytes:
    return re.sub(r"[<>\n\0]", "", text).strip().encode("utf-8", "backslashreplace")


def _write_commit(repo: pygit2.Repository, odb: _Odb, *, tree: bytes, parents: list[bytes],
                  message: bytes) -> bytes:
    name, email = _identity(repo)
    who = b"%s <%s>" % (_clean(name), _clean(email))
    lines = [b"tree " + tree.hex().encode()]
    lines += [b"parent " + p.hex().encode() for p in parents]
    lines.append(b"author %s %s" % (who, _when("GIT_AUTHOR_DATE")))
    lines.append(b"committer %s %s" % (who, _when("GIT_COMMITTER_DATE")))
    return odb.store(pygit2.GIT_OBJECT_COMMIT, b"\n".join(lines) + b"\n\n" + message)


def _message(*, session: Session, base: str, command: list[str] | None,
             exit_status: int | None, changes: list[tuple[str, bytes]], note: str | None,
             reason: str | None = None) -> bytes:
    cmd = shlex.join(command) if command else ""
    short = cmd if len(cmd) <= 60 else cmd[:57] + "..."
    subject = "git agent: " + (short or reason or "capture")
    if exit_status is not None:
        subject += f" (exit {exit_status})"
    body = [f"{s} {_show(p)}" for s, p in changes[:50]]
    if len(changes) > 50:
        body.append(f"... and {len(changes) - 50} more")
    if note:
        body += ["", note]
    trailers = [f"Agent-Session: {session.name}", f"Agent-Base: {base}"]
    if cmd:
        trailers.append("Agent-Command: " + cmd.replace("\n", "\\n"))
    if exit_status is not None:
        trailers.append(f"Agent-Exit-Status: {exit_status}")
    text = "\n".join([subject.replace("\n", " "), "", *body, "", *trailers]) + "\n"
    return text.encode("utf-8", "backslashreplace")


def _trailer(repo: pygit2.Repository, oid: bytes, key: bytes) -> str | None:
    typ, data = repo.odb.read(pygit2.Oid(raw=oid))
    if typ != pygit2.GIT_OBJECT_COMMIT:
        return None
    m = re.search(rb"^" + key + rb": *([0-9a-f]{40})$", bytes(data), re.M)
    return m.group(1).decode() if m else None


def _tree_of(repo: pygit2.Repository, oid: bytes) -> bytes:
    return _commit_parents(bytes(repo.odb.read(pygit2.Oid(raw=oid))[1]))[0]


def _anchor_of(repo: pygit2.Repository, base: str) -> str | None:
    """The HEAD a base snapshot was made on (the base itself when it is a plain commit)."""
    data = bytes(repo.odb.read(base)[1])
    _, parents = _commit_parents(data)
    if b"\n\ngit agent: base snapshot" in data:
        return parents[0].hex() if parents else None
    return base


def capture(*, worktree: Worktree, session: Session, base: Base | str,
            command: list[str] | None = None, exit_status: int | None = None,
            reason: str | None = None) -> CaptureResult:
    """Commit the session's upper onto session.branch; see the module docstring.

    `reason` names a capture that no agent run made (a live review, an apply)."""
    repo = pygit2.Repository(str(worktree.root))
    base_oid = base.oid if isinstance(base, Base) else base
    anchor = base.head if isinstance(base, Base) else _anchor_of(repo, base_oid)
    warnings: list[str] = []
    base_raw = bytes.fromhex(base_oid)

    odb = _Odb(repo, worktree.common_dir / "objects")
    try:
        ref = repo.references.get(session.branch)
        prev = bytes.fromhex(str(ref.resolve().target)) if ref is not None else None
        changes_tree, nfiles = _changes(session.upper, warnings)
        progress = ui.Progress("capturing", nfiles)
        upper_fd = beneath.open_root(session.upper)
        builder = _Builder(odb=odb, worktree=worktree, upper_fd=upper_fd,
                           base_tree=_tree_of(repo, base_raw), changes=changes_tree,
                           warnings=warnings,
                           prev_tree=_tree_of(repo, prev) if prev is not None else None,
                           progress=progress)
        try:
            tree = builder.build()
        finally:
            builder.close()
            os.close(upper_fd)
            progress.done()

        meta = session.read_meta() if session.meta_path.exists() else {}
        same_base = prev is not None and (
            prev == base_raw or _trailer(repo, prev, b"Agent-Base") == base_oid
            or (meta.get("capture_tip") == prev.hex() and meta.get("capture_base") == base_oid))

        # the agent's own commits
        imported = 0
        squashed = False
        note = None
        agent_tip: bytes | None = None
        head = agent_head(worktree=worktree, session=session)
        if head is not None and head != anchor:
            sandbox: _SandboxObjects | None = None
            try:
                where = _upper_root(worktree=worktree, session=session,
                                    real=worktree.common_dir / "objects")
                if where is None:
                    raise ValueError("no object store")
                sandbox = _SandboxObjects(where[0], os.fsencode(where[1]))
                imp = _Importer(repo, sandbox)
                new, boundary = imp.commits(bytes.fromhex(head))
                a = anchor
                if a is None:
                    ok = True
                else:
                    ok = any(b.hex() == a or repo.descendant_of(b.hex(), a) for b in boundary)
                if not ok:
                    raise ValueError("does not descend from the base")
                for c in reversed(new):
                    imp.queue(pygit2.GIT_OBJECT_COMMIT, c)
                imp.write()
                imported = len(new)
                agent_tip = bytes.fromhex(head)
            except (ValueError, KeyError, pygit2.GitError) as e:
                squashed = True
                note = "The agent's own commits were not kept (" + str(e) + "): one commit."
                warnings.append(f"agent's history not imported ({e}); captured its final state "
                                "as one commit")
            finally:
                if sandbox is not None:
                    sandbox.close()

        if agent_tip is not None:
            keep_prev = same_base and prev is not None and (
                prev == agent_tip or repo.descendant_of(prev.hex(), agent_tip.hex()))
            parent = prev if keep_prev and prev is not None else agent_tip
        else:
            parent = prev if same_base and prev is not None else base_raw

        changes = diff_trees(odb, _tree_of(repo, parent), tree)
        if not changes:
            new_tip = parent
        else:
            msg = _message(session=session, base=base_oid, command=command,
                           exit_status=exit_status, changes=changes, note=note, reason=reason)
            new_tip = _write_commit(repo, odb, tree=tree, parents=[parent], message=msg)
        odb.out.finish()  # every new object is in the repository before a ref points at it
    except BaseException:
        odb.out.abort()
        raise

    total = changes if parent == base_raw else diff_trees(odb, _tree_of(repo, base_raw), tree)
    counts = {s: sum(1 for k, _ in total if k == s) for s in "AMD"}
    result = CaptureResult(commit=new_tip.hex(), unchanged=False, added=counts["A"],
                           modified=counts["M"], deleted=counts["D"], imported=imported,
                           ignored=builder.ignored, squashed=squashed, warnings=warnings)
    if new_tip == prev or (prev is None and new_tip == base_raw):
        result.unchanged = True
        result.commit = prev.hex() if prev is not None else None
    else:
        try:
            proc.git("update-ref", "-m", f"git agent: capture {session.name}", session.branch,
                     new_tip.hex(), prev.hex() if prev is not None else ZERO_OID,
                     cwd=worktree.root)
        except proc.CalledProcessError as e:
            raise GitAgentError(f"{session.branch} moved while capturing ({e}); run the "
                                "capture again") from e
    if result.commit is not None and base_ref(worktree=worktree, session=session) != base_oid:
        keep(worktree=worktree, session=session, base=Base(oid=base_oid, head=anchor,
                                                            clean=anchor == base_oid))
    if session.meta_path.exists() and result.commit is not None:
        session.update_meta(capture_base=base_oid, capture_tip=result.commit,
                            captured_at=time.time())
    result.summary = _summary(session, result)
    return result


def _summary(session: Session, r: CaptureResult) -> str:
    if r.commit is None:
        return f"agent/{session.name}: no changes"
    parts = [f"{r.added} added, {r.modified} modified, {r.deleted} deleted"]
    if r.imported:
        parts.append(f"{r.imported} agent commit{'s' if r.imported != 1 else ''} kept")
    if r.squashed:
        parts.append("agent history squashed")
    if r.ignored:
        parts.append(f"{r.ignored} ignored path{'s' if r.ignored != 1 else ''} left out")
    state = "unchanged" if r.unchanged else r.commit[:12]
    return f"agent/{session.name} {state}: " + ", ".join(parts)
