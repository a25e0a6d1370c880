"""New objects written as one pack (git's own format), not one loose file each, past a few."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

# git's object types, as pack entries number them (and pygit2's GIT_OBJECT_* constants); not
# to be confused with gittree's entry modes (TREE, BLOB...)
OBJ_COMMIT, OBJ_TREE, OBJ_BLOB, OBJ_TAG = 1, 2, 3, 4
_NAMES = {OBJ_COMMIT: b"commit", OBJ_TREE: b"tree", OBJ_BLOB: b"blob", OBJ_TAG: b"tag"}
LOOSE_LIMIT = 100  # fewer objects stay loose, as git's transfer.unpackLimit does
_SMALL = 1 << 16


def deflate(typ: int, data: bytes) -> bytes:
    """zlib data for a pack entry, speed first (`git gc` may recompress it later).

    Trees are mostly object ids, which do not compress: they are stored. Small objects get a
    small zlib state: setting up the default one costs more than compressing a few KiB."""
    if typ == OBJ_TREE:
        c = zlib.compressobj(0, zlib.DEFLATED, 9, 1)
    elif len(data) < _SMALL:
        c = zlib.compressobj(1, zlib.DEFLATED, 13, 4)
    else:
        return zlib.compress(data, 1)
    return c.compress(data) + c.flush()


def object_id(typ: int, data: bytes) -> bytes:
    """The raw 20-byte SHA-1 name git gives an object."""
    h = hashlib.sha1(b"%s %d\0" % (_NAMES[typ], len(data)))
    h.update(data)
    return h.digest()


def _entry_header(typ: int, size: int) -> bytes:
    out = bytearray()
    byte = (typ << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


class Writer:
    """Collects new objects; `finish()` makes them visible at once, as one pack + index.

    Up to LOOSE_LIMIT objects are kept in memory and handed to `write_loose` instead (a
    capture of a few files leaves a few loose objects, like git). Objects are readable
    through the repository only after finish(): callers keep what they need to read back.
    """

    def __init__(self, objects_dir: Path, write_loose: Callable[[int, bytes], bytes]):
        self.pack_dir = objects_dir / "pack"
        self.write_loose = write_loose
        self.held: dict[bytes, tuple[int, bytes]] = {}  # oid -> (type, data), before the pack
        self.index: dict[bytes, tuple[int, int]] = {}  # oid -> (offset, crc32) in the pack
        self.fd: int | None = None
        self.tmp: Path | None = None
        self.offset = 0

    def __contains__(self, oid: bytes) -> bool:
        return oid in self.index or oid in self.held

    def __len__(self) -> int:
        return len(self.index) + len(self.held)

    def write(self, typ: int, data: bytes, oid: bytes | None = None) -> bytes:
        """Add an object (its id when the caller knows it already); returns its raw id."""
        oid = oid if oid is not None else object_id(typ, data)
        if oid in self.index or oid in self.held:
            return oid
        if self.fd is None:
            if len(self.held) < LOOSE_LIMIT:
                self.held[oid] = (typ, data)
                return oid
            self._open()
        self._append(typ, data, oid)
        return oid

    def _open(self) -> None:
        self.pack_dir.mkdir(parents=True, exist_ok=True)
        self.tmp = self.pack_dir / f"tmp_pack_git_agent_{secrets.token_hex(8)}"
        self.fd = os.open(self.tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        os.write(self.fd, b"PACK" + struct.pack(">II", 2, 0))  # the count is set in finish()
        self.offset = 12
        held, self.held = self.held, {}
        for oid, (typ, data) in held.items():
            self._append(typ, data, oid)

    def _append(self, typ: int, data: bytes, oid: bytes) -> None:
        assert self.fd is not None
        head = _entry_header(typ, len(data))
        body = deflate(typ, data)
        os.write(self.fd, head)
        _write_all(self.fd, body)
        self.index[oid] = (self.offset, zlib.crc32(body, zlib.crc32(head)))
        self.offset += len(head) + len(body)

    def finish(self) -> None:
        """Make every object added so far readable by git (no-op when none was added)."""
        for oid, (typ, data) in self.held.items():
            got = self.write_loose(typ, data)
            if got != oid:
                raise ValueError(f"object {oid.hex()} was stored as {got.hex()}")
        self.held = {}
        if self.fd is None:
            return
        fd, tmp = self.fd, self.tmp
        assert tmp is not None
        try:
            os.pwrite(fd, struct.pack(">I", len(self.index)), 8)
            h = hashlib.sha1()
            os.lseek(fd, 0, os.SEEK_SET)
            while chunk := os.read(fd, 1 << 20):
                h.update(chunk)
            checksum = h.digest()
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, checksum)
            os.fsync(fd)
        finally:
            os.close(fd)
            self.fd = None
        name = f"pack-{checksum.hex()}"
        idx_tmp = self.pack_dir / f"tmp_idx_git_agent_{secrets.token_hex(8)}"
        try:
            _write_index(idx_tmp, self.index, checksum)
            os.rename(tmp, self.pack_dir / f"{name}.pack")
            os.rename(idx_tmp, self.pack_dir / f"{name}.idx")  # now git sees the objects
        except BaseException:
            for p in (tmp, idx_tmp):
                _unlink(p)
            raise
        self.tmp = None
        self.index = {}

    def abort(self) -> None:
        """Drop a pack not finished (its objects were never visible)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            _unlink(self.tmp)
            self.tmp = None
        self.held = {}
        self.index = {}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _unlink(p: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(p)


def _write_index(path: Path, index: dict[bytes, tuple[int, int]], checksum: bytes) -> None:
    """A version 2 pack index: fan-out, sorted names, CRC32s, offsets, checksums."""
    oids = sorted(index)
    fanout = [0] * 256
    for oid in oids:
        fanout[oid[0]] += 1
    total = 0
    for i in range(256):
        total += fanout[i]
        fanout[i] = total
    small: list[int] = []
    large: list[int] = []
    for oid in oids:
        off = index[oid][0]
        if off < 0x80000000:
            small.append(off)
        else:
            small.append(0x80000000 | len(large))
            large.append(off)
    n = len(oids)
    data = b"".join([
        b"\377tOc", struct.pack(">I", 2), struct.pack(">256I", *fanout), *oids,
        struct.pack(f">{n}I", *(index[o][1] for o in oids)), struct.pack(f">{n}I", *small),
        struct.pack(f">{len(large)}Q", *large), checksum,
    ])
    data += hashlib.sha1(data).digest()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
