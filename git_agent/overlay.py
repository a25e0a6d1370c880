"""Read an overlayfs upper dir as changes: files, symlinks, dirs, opaque dirs, whiteouts."""

from __future__ import annotations

import contextlib
import enum
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


def read_xattrs(path: bytes | str | os.PathLike[str]) -> dict[str, bytes]:
    """The overlay.* xattrs of path (not following symlinks); {} where xattrs are unsupported."""
    out: dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        if name.startswith(_PREFIXES):
            with contextlib.suppress(OSError):
                out[name] = os.getxattr(path, name, follow_symlinks=False)
    return out


def _needs_xattrs(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_size == 0)


def entry_kind(path: bytes | str | os.PathLike[str], st: os.stat_result | None = None
               ) -> tuple[Kind, os.stat_result]:
    """lstat + classify one path, reading xattrs only where they can matter."""
    if st is None:
        st = os.lstat(path)
    return classify(st, read_xattrs(path) if _needs_xattrs(st) else {}), st


@dataclass(frozen=True)
class Change:
    path: bytes  # relative to the upper dir, '/'-separated, exactly as on disk
    kind: Kind
    st: os.stat_result
    metacopy: bool = False  # data still in the lower file (overlay metacopy=on)
    redirect: bytes | None = None  # dir renamed from this lower path (overlay redirect_dir)


@dataclass
class Walk:
    """The walker's findings besides the changes: what was skipped and why."""

    warnings: list[str] = field(default_factory=list)


def _show(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


def walk(upper: Path, *, report: Walk | None = None, skip_top: tuple[bytes, ...] = (b".git",)
         ) -> Iterator[Change]:
    """Yield every change in upper, parents before children, sorted; never follows symlinks.

    Top-level names in skip_top (the worktree's .git) are left out. Entries that vanish while
    a running sandbox changes the upper are skipped silently.
    """
    report = report if report is not None else Walk()
    root = os.fsencode(upper)
    yield from _walk_dir(root, b"", report, skip_top)


def _walk_dir(root: bytes, rel: bytes, report: Walk, skip_top: tuple[bytes, ...]
              ) -> Iterator[Change]:
    try:
        with os.scandir(os.path.join(root, rel) if rel else root) as it:
            names = sorted(e.name for e in it)
    except (FileNotFoundError, NotADirectoryError):
        return  # removed by a still-running sandbox
    for name in names:
        if not rel and name in skip_top:
            continue
        path = rel + b"/" + name if rel else name
        full = os.path.join(root, path)
        try:
            st = os.lstat(full)
            xattrs = read_xattrs(full) if _needs_xattrs(st) else {}
        except (FileNotFoundError, NotADirectoryError):
            continue
        kind = classify(st, xattrs)
        if kind is Kind.SKIP:
            what = _special_name(st.st_mode)
            report.warnings.append(f"skipped {what} {_show(path)!r}: git cannot store it")
            continue
        is_dir = kind in (Kind.DIR, Kind.OPAQUE_DIR)
        redirect = _xattr(xattrs, "redirect") if is_dir else None
        metacopy = kind is Kind.FILE and _xattr(xattrs, "metacopy") is not None
        yield Change(path=path, kind=kind, st=st, metacopy=metacopy, redirect=redirect)
        if is_dir:
            yield from _walk_dir(root, path, report, skip_top)


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
    root = os.fsencode(upper)
    n = 0
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                if d == root and e.name in skip_top:
                    continue
                n += 1
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return n


class MergedDir:
    """Files of a merged overlay view (upper over lower) read without mounting it.

    Used for the sandbox's git dir: HEAD, loose refs, packed-refs as the agent left them.
    """

    def __init__(self, *, upper: Path, lower: Path):
        self.upper = upper
        self.lower = lower

    def locate(self, rel: str) -> Path | None:
        """The real path holding rel in the merged view, or None when absent or not a file."""
        parts = [p for p in rel.split("/") if p]
        hidden = False  # an opaque upper dir above hides the lower
        up = self.upper
        for i, part in enumerate(parts):
            up = up / part
            try:
                kind, _ = entry_kind(up)
            except (FileNotFoundError, NotADirectoryError):
                if hidden:
                    return None
                low = self.lower.joinpath(*parts)
                try:
                    st = os.lstat(low)
                except OSError:
                    return None
                return low if stat.S_ISREG(st.st_mode) else None
            last = i == len(parts) - 1
            if kind is Kind.WHITEOUT:
                return None
            if last:
                return up if kind is Kind.FILE else None
            if kind is Kind.OPAQUE_DIR:
                hidden = True
            elif kind is not Kind.DIR:
                return None
        return None

    def read(self, rel: str) -> bytes | None:
        path = self.locate(rel)
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read()
