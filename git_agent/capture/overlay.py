"""Read an overlayfs upper dir as changes: files, symlinks, dirs, opaque dirs, whiteouts."""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from git_agent import beneath, ui
from git_agent.record import Record

# The kernel uses trusted.* as root in the initial namespace, user.* inside a user namespace.
_PREFIXES = ("trusted.overlay.", "user.overlay.")


class Kind(enum.Enum):
    FILE = "file"
    SYMLINK = "symlink"
    DIR = "dir"  # merged with the lower dir
    OPAQUE_DIR = "opaque"  # hides the lower dir: rm -rf d; mkdir d
    WHITEOUT = "whiteout"  # deletes the lower path
    SKIP = "skip"  # sockets, fifos, devices: git cannot hold them


def _xattr(xattrs: dict[str, bytes], name: str) -> bytes | None:
    for prefix in _PREFIXES:
        value = xattrs.get(prefix + name)
        if value is not None:
            return value
    return None


def classify(st: os.stat_result, xattrs: dict[str, bytes]) -> Kind:
    """What one upper entry means, from its lstat and its (not followed) xattrs."""
    mode = st.st_mode
    if stat.S_ISCHR(mode):
        return Kind.WHITEOUT if st.st_rdev == 0 else Kind.SKIP
    if stat.S_ISREG(mode):
        # xattr whiteout form (kernel >= 6.7): an empty file marked overlay.whiteout
        if st.st_size == 0 and _xattr(xattrs, "whiteout") is not None:
            return Kind.WHITEOUT
        return Kind.FILE  # even when named .wh.something: that is a plain name here
    if stat.S_ISLNK(mode):
        return Kind.SYMLINK
    if stat.S_ISDIR(mode):
        # "y": opaque; "x": merely holds xattr whiteouts, still merged with the lower dir
        return Kind.OPAQUE_DIR if _xattr(xattrs, "opaque") == b"y" else Kind.DIR
    return Kind.SKIP


def _needs_xattrs(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_size == 0)


def xattrs_at(dir_fd: int, name: bytes, st: os.stat_result) -> dict[str, bytes]:
    """The overlay.* xattrs of entry name of dir_fd (not followed), where they can matter."""
    return beneath.xattrs(dir_fd, name, _PREFIXES) if _needs_xattrs(st) else {}


def kind_at(dir_fd: int, name: bytes) -> tuple[Kind, os.stat_result, dict[str, bytes]]:
    """lstat + classify entry name of the directory dir_fd; its relevant xattrs."""
    st = beneath.lstat(dir_fd, name)
    xattrs = xattrs_at(dir_fd, name, st)
    return classify(st, xattrs), st, xattrs


class Change(Record):
    __slots__ = ("path", "kind", "st", "metacopy", "redirect")

    def __init__(
        self,
        path: bytes,
        kind: Kind,
        st: os.stat_result,
        metacopy: bool = False,
        redirect: bytes | None = None,
    ):
        self.path = path  # relative to the upper dir, '/'-separated, exactly as on disk
        self.kind = kind
        self.st = st
        self.metacopy = metacopy  # data still in the lower file (overlay metacopy=on)
        self.redirect = redirect  # dir renamed from this lower path (overlay redirect_dir)


class Walk(Record):
    """The walker's findings besides the changes: what was skipped and why."""

    __slots__ = ("warnings",)

    def __init__(self) -> None:
        self.warnings: list[str] = []


def walk(upper: Path, *, report: Walk | None = None, skip_top: tuple[bytes, ...] = (b".git",)
         ) -> Iterator[Change]:
    """Yield every change in upper, parents before children, sorted; never follows symlinks.

    Top-level names in skip_top (the worktree's .git) are left out. Entries that vanish while
    a running sandbox changes the upper are skipped silently, as is a dir that became
    something else (a symlink) between listing and entering it: the walk holds an fd on each
    dir it reads and reaches the next one through it, so nothing outside upper is ever read.
    Depth costs one stack entry per level (an explicit stack, not recursion).
    """
    report = report if report is not None else Walk()
    root = beneath.open_root(upper)
    # (dir fd, its path, its entries not yet yielded, in reverse)
    stack: list[tuple[int, bytes, list[tuple[bytes, os.stat_result]]]] = []
    try:
        stack.append((root, b"", _scan_reversed(root)))
        while stack:
            dir_fd, rel, todo = stack[-1]
            if not todo:
                stack.pop()
                os.close(dir_fd)
                continue
            name, st = todo.pop()
            if not rel and name in skip_top:
                continue
            path = rel + b"/" + name if rel else name
            xattrs = xattrs_at(dir_fd, name, st)
            kind = classify(st, xattrs)
            if kind is Kind.SKIP:
                what = _special_name(st.st_mode)
                report.warnings.append(f"skipped {what} {ui.quote_path(path)}: git cannot store it")
                continue
            is_dir = kind in (Kind.DIR, Kind.OPAQUE_DIR)
            redirect = _xattr(xattrs, "redirect") if is_dir else None
            metacopy = kind is Kind.FILE and _xattr(xattrs, "metacopy") is not None
            yield Change(path=path, kind=kind, st=st, metacopy=metacopy, redirect=redirect)
            if is_dir:
                try:
                    sub = os.open(name, beneath.DIR_FLAGS, dir_fd=dir_fd)
                except OSError as e:
                    if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                        continue  # gone, or swapped for a symlink: never entered
                    raise
                stack.append((sub, path, _scan_reversed(sub)))
    finally:
        for dir_fd, _, _ in stack:
            os.close(dir_fd)


def _scan_reversed(dir_fd: int) -> list[tuple[bytes, os.stat_result]]:
    """The dir's entries, sorted, last first (to pop); none when it vanished meanwhile."""
    try:
        return list(reversed(beneath.scan(dir_fd)))
    except (FileNotFoundError, NotADirectoryError):
        return []  # removed by a still-running sandbox


def _special_name(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISCHR(mode):
        return "character device"
    return "special file"


def count(upper: Path, *, skip_top: tuple[bytes, ...] = (b".git",)) -> int:
    """How many entries the upper holds (cheap: no xattrs), for `run` to print."""
    try:
        root = beneath.open_root(upper)
    except OSError:
        return 0
    n = 0
    stack = [(root, skip_top)]
    while stack:
        dir_fd, skip = stack.pop()
        try:
            with os.scandir(dir_fd) as it:
                entries = [e for e in it if os.fsencode(e.name) not in skip]
        except OSError:
            entries = []
        try:
            for e in entries:
                n += 1
                try:
                    if not e.is_dir(follow_symlinks=False):
                        continue
                    sub = os.open(e.name, beneath.DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    continue
                stack.append((sub, ()))
        finally:
            os.close(dir_fd)
    return n


class MergedDir:
    """Files of a merged overlay view (upper over lower) read without mounting it.

    Used for the sandbox's git dir: HEAD, loose refs, packed-refs as the agent left them.
    `upper` and `lower` are the roots of the overlay (trusted); `under` a dir below both (the
    view starts there). The upper is read through fds, never following a symlink in it: a
    running sandbox may be changing it. The lower is the host's own (read-only to the agent).
    """

    def __init__(self, *, upper: Path, lower: Path, under: str = ""):
        self.upper = upper
        self.lower = lower
        self.under = [p for p in under.split("/") if p]

    def read(self, rel: str) -> bytes | None:
        """The file rel in the merged view; None when absent or not a regular file."""
        parts = self.under + [p for p in rel.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            return None
        try:
            root = beneath.open_root(self.upper)
        except OSError:
            return self._lower(parts)
        try:
            return self._read(root, parts)
        finally:
            os.close(root)

    def _read(self, root: int, parts: list[str]) -> bytes | None:
        hidden = False  # an opaque upper dir above hides the lower
        fd = os.dup(root)
        try:
            for i, part in enumerate(parts):
                name = os.fsencode(part)
                try:
                    kind, _, _ = kind_at(fd, name)
                except (FileNotFoundError, NotADirectoryError):
                    return None if hidden else self._lower(parts)
                if kind is Kind.WHITEOUT:
                    return None
                if i == len(parts) - 1:
                    return _read_file(fd, name) if kind is Kind.FILE else None
                if kind is Kind.OPAQUE_DIR:
                    hidden = True
                elif kind is not Kind.DIR:
                    return None
                try:
                    nfd = os.open(name, beneath.DIR_FLAGS, dir_fd=fd)
                except OSError:
                    return None  # changed meanwhile (e.g. a symlink now): not followed
                os.close(fd)
                fd = nfd
            return None
        finally:
            os.close(fd)

    def _lower(self, parts: list[str]) -> bytes | None:
        low = self.lower.joinpath(*parts)
        try:
            fd = os.open(low, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        return _read_regular(fd)


def _read_file(dir_fd: int, name: bytes) -> bytes | None:
    try:
        fd = os.open(name, beneath.FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    return _read_regular(fd)


_MAX_META = 64 << 20  # HEAD, a ref, packed-refs: nothing near this big


def _read_regular(fd: int) -> bytes | None:
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        return beneath.read_fd(fd, _MAX_META, st.st_size)
    except OSError:
        return None
    finally:
        os.close(fd)
