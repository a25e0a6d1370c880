"""The sandbox's git dir read as data: the agent's HEAD, its object store, and the import of
its commits into the repository.

Everything below the session's upper root is the agent's to change, even while it is read:
nothing there is followed or trusted. Objects are hash-verified, trees checked for names git
refuses (gittree), and a store that is not plain files and dirs is refused as a whole
(Unimportable: the capture then squashes the agent's history into one commit).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import zlib
from pathlib import Path
from typing import Protocol

import pygit2

from git_agent import beneath, gittree, ui
from git_agent.capture import newpaths, overlay, pack
from git_agent.gittree import GITLINK, MAX_BLOB, TREE, parse_tree
from git_agent.repo import Worktree
from git_agent.session import Session, upper_of

_MAX_IMPORT = 100_000


class Unimportable(Exception):
    """The agent's store or history cannot be imported as it is (the message says why)."""


def _upper_split(*, worktree: Worktree, session: Session, real: Path
                 ) -> tuple[Path, str] | None:
    """session.upper_of(real) as (the upper root, the path below it): the root is ours, the
    path below it the agent's to change."""
    upper = upper_of(worktree=worktree, session=session, real=real)
    if upper is None:
        return None
    for root in (session.upper, session.git_upper):
        if upper == root or root in upper.parents:
            rel = upper.relative_to(root)
            return root, "" if rel == Path(".") else rel.as_posix()
    return None


def _merged(*, worktree: Worktree, session: Session, real: Path) -> overlay.MergedDir | None:
    found = _upper_split(worktree=worktree, session=session, real=real)
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


class SandboxObjects:
    """The upper's object store (loose + packs) opened read-only as data.

    The agent controls every path below the upper root: nothing there is followed. Each pack
    and index is opened through beneath (no symlink in any component), checked to be a regular
    file, and libgit2 reads it through a private dir of links to /proc/self/fd/N, which name
    exactly the opened files. Loose objects are read here, the same way. A symlink or other
    non-regular entry where the store's dirs or files should be refuses the whole store
    (Unimportable: the agent's history is then squashed)."""

    @classmethod
    def of(cls, *, worktree: Worktree, session: Session) -> SandboxObjects:
        """The store a write to the repository's objects dir lands in, inside the session."""
        found = _upper_split(worktree=worktree, session=session,
                             real=worktree.common_dir / "objects")
        if found is None:
            raise Unimportable("no object store")
        return cls(found[0], os.fsencode(found[1]))

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
            raise Unimportable(f"the sandbox's object store is not a plain directory ({e.strerror})"
                             ) from e
        finally:
            os.close(root)
        try:
            pack_fd = beneath.open_dir(self._objects, b"pack")
        except FileNotFoundError:
            return
        except OSError as e:
            raise Unimportable(f"the sandbox's pack dir is not a plain directory ({e.strerror})"
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
                    raise Unimportable("too many packs in the sandbox")
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
            raise Unimportable(
                f"{ui.quote_path(name)} in the sandbox's pack dir is not a regular file")
        return st.st_size > 0

    def _open_regular(self, dir_fd: int, name: bytes) -> int:
        try:
            fd = os.open(name, beneath.FILE_FLAGS, dir_fd=dir_fd)
        except OSError as e:
            raise Unimportable(f"cannot open {ui.quote_path(name)} in the sandbox's object store "
                             f"({e.strerror})") from e
        self._fds.append(fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unimportable(f"{ui.quote_path(name)} in the sandbox's object store is not a file")
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
            raise Unimportable(f"loose object {oid.hex()} in the sandbox: {e.strerror}") from e
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if stat.S_ISCHR(st.st_mode):
                    return None  # a whiteout
                raise Unimportable(f"loose object {oid.hex()} in the sandbox is not a file")
            raw = beneath.read_fd(fd, MAX_BLOB, st.st_size)
        finally:
            os.close(fd)
        if raw is None:
            raise Unimportable(f"loose object {oid.hex()} in the sandbox is too big")
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
    """A loose object's (type, data), checked to hash to oid; at most MAX_BLOB inflated."""
    z = zlib.decompressobj()
    try:
        out = z.decompress(raw, MAX_BLOB + 64)
    except zlib.error as e:
        raise Unimportable(f"loose object {oid.hex()} is corrupt ({e})") from e
    if z.unconsumed_tail:
        raise Unimportable(f"loose object {oid.hex()} is too big")
    head, nul, data = out.partition(b"\0")
    kind, _, size = head.partition(b" ")
    typ = _LOOSE_TYPES.get(kind)
    if not nul or typ is None or not size.isdigit() or int(size) != len(data) or \
            pack.object_id(typ, data) != oid:
        raise Unimportable(f"loose object {oid.hex()} is corrupt")
    return typ, data


def commit_parents(data: bytes) -> tuple[bytes, list[bytes]]:
    head = data.split(b"\n\n", 1)[0]
    tree = b""
    parents = []
    for line in head.split(b"\n"):
        if line.startswith(b"tree "):
            tree = bytes.fromhex(line[5:].decode())
        elif line.startswith(b"parent "):
            parents.append(bytes.fromhex(line[7:].decode()))
    return tree, parents


class ObjectReader(Protocol):
    """Where Importer reads untrusted objects: the sandbox's store, or a remote's bundle."""

    def read(self, oid: bytes) -> tuple[int, bytes]: ...


class Importer:
    """Copy the agent's commits (and their trees and blobs) from the sandbox store."""

    def __init__(self, repo: pygit2.Repository, sandbox: ObjectReader):
        self.repo = repo
        self.sandbox = sandbox
        self.pending: list[tuple[int, bytes, bytes]] = []  # (type, data, oid) in write order
        self.queued: set[bytes] = set()
        self.shapes = newpaths.KnownShapes(repo)

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
                raise Unimportable("too many commits")
            typ, data = self.sandbox.read(c)
            if typ != pygit2.GIT_OBJECT_COMMIT:
                raise Unimportable(f"{c.hex()} is not a commit")
            new.append(c)
            stack.extend(commit_parents(data)[1])
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
                raise Unimportable(f"{o.hex()}: expected object type {t}, found {rt}")
            stack.append((t, o, True))
            if t == pygit2.GIT_OBJECT_TREE:
                entries = parse_tree(data)
                self._check_tree(o, entries)
                for mode, sub in entries.values():
                    if mode == TREE:
                        stack.append((pygit2.GIT_OBJECT_TREE, sub, False))
                    elif mode != GITLINK:
                        stack.append((pygit2.GIT_OBJECT_BLOB, sub, False))
            elif t == pygit2.GIT_OBJECT_COMMIT:
                tree, parents = commit_parents(data)
                stack.append((pygit2.GIT_OBJECT_TREE, tree, False))
                try:
                    newpaths.check(self.shapes, self._read, tree,
                                   [commit_parents(self._read(p))[0] for p in parents])
                except newpaths.ShapedAtNewPath as e:
                    raise Unimportable(str(e)) from e

    def _read(self, oid: bytes) -> bytes:
        """An object's data, from the repository's store or else the untrusted one."""
        try:
            return bytes(self.repo.odb.read(pygit2.Oid(raw=oid))[1])
        except KeyError:
            return self.sandbox.read(oid)[1]

    def _check_tree(self, oid: bytes, entries: dict[bytes, gittree.Entry]) -> None:
        """A new tree of the agent's may hold nothing that makes git read another repository:
        no name git refuses, no .gitmodules whose blob is not already in the repository's store
        (queued objects do not count), and no directory
        of a repository's shape (HEAD beside objects/refs/commondir) at all: a new tree of
        that shape is a new or changed one (a copy of a fixture of yours with its own config
        is built of objects you have). Refused: the history is then squashed into the final
        state, where capture leaves those entries out (the same rules as for the upper)."""
        for name, (mode, sub) in entries.items():
            if gittree.bad_entry(name, mode):
                raise Unimportable(f"tree {oid.hex()} has an unsafe entry {ui.quote_path(name)}")
            # known means in the repository's own store: never "queued" (the same import may
            # bring those bytes under another name, and the order of the walk must not matter)
            if gittree.is_dotgitmodules(name) and pygit2.Oid(raw=sub) not in self.repo.odb:
                raise Unimportable(f"tree {oid.hex()} brings a new .gitmodules")
        if gittree.makes_gitdir(entries):
            raise Unimportable(f"tree {oid.hex()} has the shape of a repository "
                               "(HEAD beside objects/refs)")

    def write(self) -> None:
        for typ, data, oid in self.pending:
            got: bytes = self.repo.odb.write(typ, data).raw
            if got != oid:
                raise Unimportable(f"object {oid.hex()} does not hash to its name")
