"""The worktree's files, read and written by fd: no symlink is ever followed, nothing outside
the worktree or under .git is written, each file lands with one atomic rename, and a Journal
notes every change so that a failure halfway puts the worktree back as it was."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from git_agent import beneath, gittree
from git_agent.errors import GitAgentError
from git_agent.risks import MODE_EXEC, MODE_FILE, MODE_LINK

MODE_DIR = 0o040000
MODE_OTHER = 1  # a fifo, socket or device in the worktree


@dataclass(frozen=True)
class Entry:
    """What one side holds at a path: a git mode and the bytes (a link's target for links)."""

    mode: int
    data: bytes = b""

    @property
    def is_file(self) -> bool:
        return self.mode in (MODE_FILE, MODE_EXEC)


def components(path: bytes) -> list[bytes]:
    parts = path.split(b"/")
    if not path or any(p in (b"", b".", b"..") for p in parts):
        raise GitAgentError(f"refusing the path {path!r}: not a plain relative path")
    if any(gittree.is_dotgit(p) for p in parts):  # .git, and .GIT, git~1, .git. ...
        raise GitAgentError(
            f"refusing to write {os.fsdecode(path)}: paths under .git are never applied; "
            "reject it with `git agent apply -i` (r)")
    return parts


def open_root(root: Path) -> int:
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _open_dir(root_fd: int, parts: Sequence[bytes]) -> tuple[int | None, bytes | None]:
    """An fd on the dir holding the last part, or (None, the first parent that is not a dir)."""
    fd = os.dup(root_fd)
    for i, part in enumerate(parts[:-1]):
        try:
            nfd = os.open(part, beneath.DIR_FLAGS, dir_fd=fd)
        except OSError as e:
            os.close(fd)
            missing = isinstance(e, FileNotFoundError)
            return None, None if missing else b"/".join(parts[: i + 1])
        os.close(fd)
        fd = nfd
    return fd, None


def read(root_fd: int, path: bytes) -> tuple[Entry | None, bytes | None]:
    """(what the worktree holds at path, or None; the blocking non-dir parent, if any)."""
    parts = components(path)
    fd, blocker = _open_dir(root_fd, parts)
    if fd is None:
        return None, blocker
    try:
        try:
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None, None
        if stat.S_ISLNK(st.st_mode):
            return Entry(MODE_LINK, os.readlink(parts[-1], dir_fd=fd)), None
        if stat.S_ISDIR(st.st_mode):
            return Entry(MODE_DIR), None
        if not stat.S_ISREG(st.st_mode):
            return Entry(MODE_OTHER), None
        ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        with os.fdopen(ffd, "rb") as f:
            data = f.read()
        return Entry(MODE_EXEC if st.st_mode & 0o100 else MODE_FILE, data), None
    finally:
        os.close(fd)


def _lstat(root_fd: int, path: bytes) -> os.stat_result | None:
    fd, _ = _open_dir(root_fd, components(path))
    if fd is None:
        return None
    try:
        return os.stat(path.rsplit(b"/", 1)[-1], dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def perms(root_fd: int, path: bytes) -> int | None:
    """The permission bits of the regular file at path (None: not one)."""
    st = _lstat(root_fd, path)
    return stat.S_IMODE(st.st_mode) if st is not None and stat.S_ISREG(st.st_mode) else None


def files_below(root_fd: int, path: bytes) -> Iterable[bytes]:
    """Every non-directory entry below a worktree directory (not following symlinks)."""
    fd, _ = _open_dir(root_fd, [*components(path), b"x"])
    if fd is None:
        return
    try:
        for name in os.listdir(fd):
            sub = path + b"/" + os.fsencode(name)
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                yield from files_below(root_fd, sub)
            else:
                yield sub
    finally:
        os.close(fd)


def checkout_perms(keep_perms: int, exe: bool) -> int:
    """The bits of a file written over one with keep_perms: x wherever r is set for an
    executable, as git does for checkouts, and no x otherwise."""
    bits = keep_perms & ~0o111
    return bits | (keep_perms & 0o444) >> 2 if exe else bits


class Journal:
    """How to undo each change made so far; undo() takes them back, newest first."""

    def __init__(self, root_fd: int):
        self.root_fd = root_fd
        self._undo: list[tuple[bytes, Callable[[], None]]] = []

    def note(self, path: bytes, undo: Callable[[], None]) -> None:
        self._undo.append((path, undo))

    def undo(self) -> list[str]:
        """Take every change back; returns what could not be (a line per path)."""
        failed = []
        while self._undo:
            path, step = self._undo.pop()
            try:
                step()
            except (OSError, GitAgentError) as e:
                failed.append(f"{os.fsdecode(path)}: {getattr(e, 'strerror', None) or e}")
        return failed


def _walk_create(root_fd: int, parts: Sequence[bytes], journal: Journal | None) -> int:
    """An fd on the parent dir of the last part, creating directories (never following links)."""

    def made(depth: int) -> None:
        if journal is not None:
            path = b"/".join(parts[:depth])
            journal.note(path, partial(_rmdir, root_fd, path))

    return beneath.open_dir(root_fd, parts[:-1], made=made)


def _rmdir(root_fd: int, path: bytes) -> None:
    fd, _ = _open_dir(root_fd, components(path))
    if fd is None:
        raise FileNotFoundError(0, "its parent directory is gone")
    try:
        os.rmdir(path.rsplit(b"/", 1)[-1], dir_fd=fd)
    finally:
        os.close(fd)


def _mkdir(root_fd: int, path: bytes, mode: int) -> None:
    fd = _walk_create(root_fd, components(path), None)
    try:
        name = path.rsplit(b"/", 1)[-1]
        os.mkdir(name, 0o700, dir_fd=fd)
        os.chmod(name, mode, dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def _put_back(root_fd: int, path: bytes, before: Entry | None, bits: int | None) -> None:
    """Make path hold `before` again (None: nothing) with exactly the permission bits `bits`."""
    if before is None:
        fd, _ = _open_dir(root_fd, components(path))
        if fd is not None:
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path.rsplit(b"/", 1)[-1], dir_fd=fd)
            finally:
                os.close(fd)
    else:
        write(root_fd, path, before, bits, None)


def _undo_of(root_fd: int, path: bytes, before: Entry | None) -> Callable[[], None]:
    """The step that puts back what path holds now (before: its bytes, read by the caller)."""
    st = _lstat(root_fd, path)
    if (st is None) != (before is None) and not (st is not None and stat.S_ISDIR(st.st_mode)):
        # (a dir where nothing was read: one this apply's deletions emptied)
        what = "is gone from" if st is None else "appeared in"
        raise GitAgentError(f"{os.fsdecode(path)} {what} your worktree since apply read it; "
                            "apply again")
    bits = stat.S_IMODE(st.st_mode) if st is not None and stat.S_ISREG(st.st_mode) else None
    return partial(_put_back, root_fd, path, before, bits)


def write(root_fd: int, path: bytes, entry: Entry, bits: int | None,
          journal: Journal | None, before: Entry | None = None) -> None:
    """Put entry at path with one rename (bits: the new file's exact permission bits; None:
    0666 or 0777 less the umask). With a journal, `before` is what path holds now."""
    parts = components(path)
    undo = _undo_of(root_fd, path, before) if journal is not None else None
    fd = _walk_create(root_fd, parts, journal)
    tmp = b".git-agent-" + secrets.token_hex(6).encode() + b".tmp"
    try:
        if entry.mode == MODE_LINK:
            os.symlink(entry.data, tmp, dir_fd=fd)
        else:
            exe = entry.mode == MODE_EXEC
            ffd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o777 if exe else 0o666, dir_fd=fd)
            try:
                with os.fdopen(ffd, "wb", closefd=False) as f:
                    f.write(entry.data)
                if bits is not None:
                    os.fchmod(ffd, bits)
            finally:
                os.close(ffd)
        try:
            os.rename(tmp, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
        except IsADirectoryError:  # an empty dir left where the file goes
            dir_bits = stat.S_IMODE(os.stat(parts[-1], dir_fd=fd, follow_symlinks=False).st_mode)
            os.rmdir(parts[-1], dir_fd=fd)
            if journal is not None:
                journal.note(path, partial(_mkdir, root_fd, path, dir_bits))
            os.rename(tmp, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
        if journal is not None and undo is not None:
            journal.note(path, undo)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=fd)
        raise
    finally:
        os.close(fd)


def delete(root_fd: int, path: bytes, journal: Journal, before: Entry | None) -> None:
    """Remove the path (no following), then every parent dir this left empty. `before`: what
    path holds now, for the journal."""
    parts = components(path)
    for depth in range(len(parts), 0, -1):
        here = b"/".join(parts[:depth])
        fd, _ = _open_dir(root_fd, parts[:depth])
        if fd is None:
            return
        try:
            if depth == len(parts):
                if _lstat(root_fd, path) is None:
                    continue
                undo = _undo_of(root_fd, path, before)
                try:
                    os.unlink(parts[-1], dir_fd=fd)
                except IsADirectoryError:
                    bits = stat.S_IMODE(os.stat(parts[-1], dir_fd=fd).st_mode)
                    os.rmdir(parts[-1], dir_fd=fd)
                    undo = partial(_mkdir, root_fd, path, bits)
                journal.note(path, undo)
            else:
                bits = stat.S_IMODE(os.stat(parts[depth - 1], dir_fd=fd).st_mode)
                try:
                    os.rmdir(parts[depth - 1], dir_fd=fd)
                except OSError:
                    return  # not empty (or gone): stop climbing
                journal.note(here, partial(_mkdir, root_fd, here, bits))
        finally:
            os.close(fd)
