"""Reach paths under a directory an untrusted process may be changing, never following a
symlink in any component.

A running sandbox can swap any directory of its overlay upper for a symlink to a host path at
any moment (rename, RENAME_EXCHANGE), so a joined path string checked once means nothing: the
kernel resolves every component again on every call. Here every component is opened one at a
time with O_NOFOLLOW relative to the fd of its parent, and every operation on an entry is done
relative to the fd of the directory holding it: whatever the other process does, nothing
outside the root can be reached. The root itself is trusted (the caller made it).

Paths are bytes relative to the root, '/'-separated; '', '.' and '..' components are refused.
Errors are plain OSErrors: ENOENT (gone), ENOTDIR/ELOOP (a component is not a directory, or is
a symlink), as the kernel reports them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a fifo


def parts(rel: bytes) -> list[bytes]:
    """The components of rel ([] for b''); refuses empty, '.' and '..' components."""
    if not rel:
        return []
    out = rel.split(b"/")
    if any(p in (b"", b".", b"..") or b"\0" in p for p in out):
        raise ValueError(f"not a plain relative path: {rel!r}")
    return out


def open_root(path: bytes | str | os.PathLike[str]) -> int:
    """An fd on a trusted directory to work beneath (its last component is not followed)."""
    return os.open(path, DIR_FLAGS)


def open_dir(dir_fd: int, rel: bytes | Sequence[bytes], *,
             made: Callable[[int], None] | None = None, mode: int = 0o777) -> int:
    """An fd on the directory rel beneath dir_fd (dir_fd itself, dup'ed, for b''). With made,
    missing directories are created (mode less the umask) and made(i) hears of each: the
    number of components of rel that lead to it."""
    comps = parts(rel) if isinstance(rel, bytes) else list(rel)
    fd = os.dup(dir_fd)
    try:
        for i, name in enumerate(comps, 1):
            try:
                nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if made is None:
                    raise
                os.mkdir(name, mode, dir_fd=fd)
                made(i)
                nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def reach(dir_fd: int, comps: Sequence[bytes]) -> tuple[int, int, OSError | None]:
    """Open the directories comps beneath dir_fd one by one, as far as they go: (an fd on the
    last one reached, how many of comps were opened, the OSError that stopped the walk or
    None), for callers that must say which component failed and how."""
    fd = os.dup(dir_fd)
    try:
        for i, name in enumerate(comps):
            try:
                nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                return fd, i, e
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd, len(comps), None


@contextlib.contextmanager
def parent(dir_fd: int, rel: bytes) -> Iterator[tuple[int, bytes]]:
    """(an fd on the directory holding rel's last component, that component); closed after."""
    comps = parts(rel)
    if not comps:
        raise ValueError("the root has no parent here")
    fd = open_dir(dir_fd, comps[:-1])
    try:
        yield fd, comps[-1]
    finally:
        os.close(fd)


@contextlib.contextmanager
def opened_dir(dir_fd: int, rel: bytes | Sequence[bytes]) -> Iterator[int]:
    fd = open_dir(dir_fd, rel)
    try:
        yield fd
    finally:
        os.close(fd)


def open_file(dir_fd: int, rel: bytes, flags: int = FILE_FLAGS) -> int:
    """An fd on the file rel beneath dir_fd (no component followed, the last one neither)."""
    with parent(dir_fd, rel) as (fd, name):
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)


def lstat(dir_fd: int, name: bytes) -> os.stat_result:
    """lstat of one entry of the directory dir_fd."""
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def lexists(dir_fd: int, name: bytes) -> bool:
    try:
        lstat(dir_fd, name)
    except FileNotFoundError:
        return False
    return True


def readlink(dir_fd: int, name: bytes) -> bytes:
    return os.readlink(name, dir_fd=dir_fd)


def proc_path(dir_fd: int, name: bytes = b"") -> bytes:
    """A path naming exactly entry `name` of the directory dir_fd, for calls that take no
    dir_fd: /proc's magic link resolves to that very directory, however it was renamed or
    replaced since, and the last component stays for the call to (not) follow."""
    base = b"/proc/self/fd/%d" % dir_fd
    return base + b"/" + name if name else base


def xattrs(dir_fd: int, name: bytes, prefixes: tuple[str, ...] = ("",)) -> dict[str, bytes]:
    """The xattrs of one entry (not followed) whose names start with one of prefixes;
    {} where xattrs are unsupported."""
    path = proc_path(dir_fd, name)
    out: dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for key in names:
        if key.startswith(prefixes):
            with contextlib.suppress(OSError):
                out[key] = os.getxattr(path, key, follow_symlinks=False)
    return out


def scan(dir_fd: int) -> list[tuple[bytes, os.stat_result]]:
    """Every entry of the directory dir_fd with its lstat, sorted by name; entries that vanish
    while listing are left out."""
    out: list[tuple[bytes, os.stat_result]] = []
    with os.scandir(dir_fd) as it:
        entries = list(it)
    for e in entries:
        name = os.fsencode(e.name)
        try:
            out.append((name, e.stat(follow_symlinks=False)))  # fstatat(dir_fd, name)
        except (FileNotFoundError, NotADirectoryError):
            continue
    out.sort()
    return out


def unlink(dir_fd: int, name: bytes) -> None:
    os.unlink(name, dir_fd=dir_fd)


def rmdir(dir_fd: int, name: bytes) -> None:
    os.rmdir(name, dir_fd=dir_fd)


def rmtree(dir_fd: int, name: bytes) -> None:
    """Remove the entry name of dir_fd and, for a directory, everything below it (no links
    followed: shutil's fd-based walk checks every directory it enters is the one it lstat'ed)."""
    st = lstat(dir_fd, name)
    if not stat.S_ISDIR(st.st_mode):
        unlink(dir_fd, name)
        return
    import shutil  # here: its import costs launch ~2 ms, and launch walks upper dirs

    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - Linux always has it
        raise OSError(errno.ENOTSUP, "no symlink-safe rmtree on this platform")
    shutil.rmtree(os.fsdecode(name), dir_fd=dir_fd)


def mkdir(dir_fd: int, name: bytes, mode: int = 0o755) -> None:
    os.mkdir(name, mode, dir_fd=dir_fd)


def symlink(target: bytes, dir_fd: int, name: bytes) -> None:
    os.symlink(target, name, dir_fd=dir_fd)


def create(dir_fd: int, name: bytes, mode: int = 0o644) -> int:
    """A new file name in dir_fd, open for writing (fails if anything stands there)."""
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                   mode, dir_fd=dir_fd)


def read_fd(fd: int, limit: int, hint: int = 0) -> bytes | None:
    """The rest of fd, when it holds at most limit bytes; None (after reading no more than
    limit + 1 bytes) when it holds more. hint: the size expected (one read when right)."""
    chunks: list[bytes] = []
    left = limit + 1
    want = min(max(hint, 0), limit) + 1
    while left > 0:
        chunk = os.read(fd, min(left, want))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
        want = 1 << 24
    if left <= 0:
        return None
    return b"".join(chunks)


def read_regular(dir_fd: int, rel: bytes, limit: int) -> bytes | None:
    """rel's bytes when it is a regular file beneath dir_fd (no component followed) of at most
    limit bytes; None when it is missing, unreadable, something else, or bigger."""
    try:
        fd = open_file(dir_fd, rel)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        return read_fd(fd, limit, st.st_size) if stat.S_ISREG(st.st_mode) else None
    except OSError:
        return None
    finally:
        os.close(fd)
