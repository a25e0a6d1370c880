"""The worktree's files, read and written by fd: no symlink is ever followed, nothing outside
the worktree or under .git is written, each file lands with one atomic rename, and a Journal
(journal.py) notes every change so that a failure halfway puts the worktree back as it was.
Where the journal cannot keep what a change replaces, the bytes apply read are written back."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from git_agent import beneath, gittree, ui
from git_agent.errors import GitAgentError
from git_agent.gittree import BLOB, EXEC, LINK, TREE
from git_agent.mergeback import wt_paths
from git_agent.mergeback.journal import Journal as Journal
from git_agent.mergeback.reach import Reach

OTHER = 1  # not a git mode: a fifo, socket or device in the worktree


@dataclass(frozen=True)
class Entry:
    """What one side holds at a path: a git mode and the bytes (a link's target for links)."""

    mode: int
    data: bytes = b""

    @property
    def is_file(self) -> bool:
        return self.mode in (BLOB, EXEC)


components = wt_paths.components
open_root = wt_paths.open_root
close_root = wt_paths.close_root
_open_dir = wt_paths.open_parent


Sig = tuple[int, int, int, int]  # what lstat says of an entry: type and bits, inode, size, mtime


def sig(st: os.stat_result) -> Sig:
    return (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns)


def read(root_fd: int, path: bytes) -> tuple[Entry | None, bytes | None]:
    """(what the worktree holds at path, or None; the blocking non-dir parent, if any)."""
    entry, blocker, _ = read_signed(root_fd, path)
    return entry, blocker


def read_signed(root_fd: int, path: bytes, *, contents: bool = True,
                ) -> tuple[Entry | None, bytes | None, Sig | None]:
    """read, and the entry's lstat as it was before its bytes were read (a write meanwhile
    shows as a later change). PermissionError: the user may not read their own file.
    contents=False: a regular file's Entry has no data (its size is in the Sig)."""
    parts = components(path)
    fd, blocker = _open_dir(root_fd, parts)
    if fd is None:
        return None, blocker, None
    try:
        try:
            st = beneath.lstat(fd, parts[-1])
        except FileNotFoundError:
            return None, None, None
        if stat.S_ISLNK(st.st_mode):
            return Entry(LINK, beneath.readlink(fd, parts[-1])), None, sig(st)
        if stat.S_ISDIR(st.st_mode):
            return Entry(TREE), None, sig(st)
        if not stat.S_ISREG(st.st_mode):
            return Entry(OTHER), None, sig(st)
        if not contents:
            return Entry(EXEC if st.st_mode & 0o100 else BLOB), None, sig(st)
        ffd = os.open(parts[-1], beneath.FILE_FLAGS, dir_fd=fd)
        with os.fdopen(ffd, "rb") as f:
            data = f.read()
        return Entry(EXEC if st.st_mode & 0o100 else BLOB, data), None, sig(st)
    finally:
        os.close(fd)


def files_below(root_fd: int, path: bytes) -> Iterable[bytes]:
    """What a worktree directory holds: every entry that is not a directory, and every empty
    directory (its path ending in b"/"), never following symlinks. A `.git` (a repository
    inside) is one entry, not entered. PermissionError: one of them cannot be listed."""
    fd, _ = _open_dir(root_fd, [*components(path), b"x"])
    if fd is None:
        return
    try:
        yield from _below(fd, path)
    finally:
        os.close(fd)


def _below(fd: int, path: bytes) -> Iterable[bytes]:
    """files_below's walk, with an explicit stack (no recursion on the tree's depth); each
    directory is reached by fd (reach.Reach), listed, and closed before the next."""
    stack: list[tuple[bytes, list[bytes]]] = [(path, [])]  # (path, components below fd)
    with Reach(fd) as reach:
        while stack:
            here, rel = stack.pop()
            dfd = reach.open(rel)
            try:
                entries = beneath.scan(dfd)
            finally:
                os.close(dfd)
            if not entries and rel:
                yield here + b"/"
            for name, st in entries:
                sub = here + b"/" + name
                if stat.S_ISDIR(st.st_mode) and not gittree.is_dotgit(name):
                    stack.append((sub, [*rel, name]))
                else:
                    yield sub


def emptied_by(below: Iterable[bytes], deleting: set[bytes]) -> bool:
    """Do deletions of `deleting` leave nothing of what files_below found? An empty directory
    counts as emptied when it held paths being deleted (a directory of the base, left empty
    by your own rm); one of yours that never held any does not."""
    for entry in below:
        if entry.endswith(b"/"):
            if not any(d.startswith(entry) for d in deleting):
                return False
        elif entry not in deleting:
            return False
    return True


def checkout_perms(keep_perms: int, exe: bool) -> int:
    """The bits of a file written over one with keep_perms: its rwx bits (never setuid, setgid
    or sticky: those were given to other bytes), x wherever r is set for an executable, as git
    does for checkouts, and no x otherwise."""
    bits = keep_perms & 0o666
    return bits | (keep_perms & 0o444) >> 2 if exe else bits


class Changed(GitAgentError):
    """The worktree changed at a path between apply's reading and its writing."""


def _walk_create(root_fd: int, parts: Sequence[bytes], journal: Journal | None) -> int:
    """An fd on the parent dir of the last part, creating directories (never following links)."""
    if journal is None:
        return wt_paths.walk_create(root_fd, parts)
    root = journal.root_fd
    return wt_paths.walk_create(root_fd, parts,
                                lambda path: journal.note(path, partial(_rmdir, root, path)))


def _rmdir(root_fd: int, path: bytes) -> None:
    wt_paths.forget()
    fd, _ = _open_dir(root_fd, components(path))
    if fd is not None:
        try:
            os.rmdir(path.rsplit(b"/", 1)[-1], dir_fd=fd)
        finally:
            os.close(fd)


def _mkdir(root_fd: int, path: bytes, mode: int) -> None:
    fd = _walk_create(root_fd, components(path), None)
    try:
        name = path.rsplit(b"/", 1)[-1]
        os.mkdir(name, 0o700, dir_fd=fd)
        dfd = os.open(name, beneath.DIR_FLAGS, dir_fd=fd)
        try:
            os.fchmod(dfd, mode)
        finally:
            os.close(dfd)
    finally:
        os.close(fd)


def _unlink(root_fd: int, path: bytes) -> None:
    fd, _ = _open_dir(root_fd, components(path))
    if fd is not None:
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path.rsplit(b"/", 1)[-1], dir_fd=fd)
        finally:
            os.close(fd)


def _check(path: bytes, st: os.stat_result | None, before: Entry | None,
           before_sig: Sig | None) -> None:
    """Refuse to write or delete a path that is not as apply read it."""
    if before is None:  # nothing there then, or a directory this apply's deletions emptied
        same = st is None or stat.S_ISDIR(st.st_mode)
    else:
        same = st is not None and sig(st) == before_sig
    if not same:
        how = "appeared in" if before is None else "changed in" if st else "is gone from"
        raise Changed(f"{ui.quote_path(path)} {how} your worktree since apply read it; "
                      "apply again")


def write(root_fd: int, path: bytes, entry: Entry, bits: int | None,
          journal: Journal | None, before: Entry | None = None,
          before_sig: Sig | None = None, fill: Callable[[int], None] | None = None) -> None:
    """Put entry at path with one rename (bits: the new file's exact permission bits; None:
    0666 or 0777 less the umask). With a journal, path must hold what apply read there
    (before, before_sig). fill: writes a file's contents to the fd given, instead of
    entry.data (a stream too big to hold)."""
    parts = components(path)
    name = parts[-1]
    fd = _walk_create(root_fd, parts, journal)
    tmp = b".git-agent-" + secrets.token_hex(6).encode() + b".tmp"
    try:
        undo: Callable[[], None] | None = None
        if journal is not None:
            st = _stat_at(fd, name)
            _check(path, st, before, before_sig)
            if st is None or stat.S_ISDIR(st.st_mode):  # (a dir: emptied, removed below)
                undo = partial(_unlink, root_fd, path)
            elif not journal.keep(fd, name, path, move=False):
                assert before is not None
                keep_bits = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None
                undo = partial(write, root_fd, path, before, keep_bits, None)
        if entry.mode == LINK:
            os.symlink(entry.data, tmp, dir_fd=fd)
        else:
            exe = entry.mode == EXEC
            ffd = beneath.create(fd, tmp, 0o777 if exe else 0o666)
            try:
                if fill is not None:
                    fill(ffd)
                else:
                    with os.fdopen(ffd, "wb", closefd=False) as f:
                        f.write(entry.data)
                if bits is not None:
                    os.fchmod(ffd, bits)
            finally:
                os.close(ffd)
        try:
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except IsADirectoryError:  # an empty dir left where the file goes
            _remove_dir(fd, name, path, journal)
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        if journal is not None and undo is not None:
            journal.note(path, undo)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=fd)
        raise
    finally:
        os.close(fd)


def _empty(fd: int, name: bytes) -> bool:
    dfd = os.open(name, beneath.DIR_FLAGS, dir_fd=fd)
    try:
        return not os.listdir(dfd)
    finally:
        os.close(dfd)


def _stat_at(fd: int, name: bytes) -> os.stat_result | None:
    """beneath.lstat, None when nothing is there."""
    try:
        return beneath.lstat(fd, name)
    except FileNotFoundError:
        return None


def _remove_dir(fd: int, name: bytes, path: bytes, journal: Journal | None) -> None:
    """Remove the directory name of dir fd (the worktree's path), with the empty directories
    it may hold, journaled. One that holds anything else (a file of yours apply did not
    count) is refused: it is never moved away."""
    wt_paths.forget()  # it, or what it holds, may be cached
    if not _only_dirs(fd, name):
        raise Changed(f"{ui.quote_path(path)} is a directory in your worktree that holds more "
                      "than apply read there; apply again")
    if journal is not None and journal.keep(fd, name, path, move=True):
        return
    _rmdirs(fd, name, path, journal)


def _dirs_below(fd: int, name: bytes) -> list[tuple[list[bytes], int]] | None:
    """Every directory at or below the entry name of dir fd, parents before children, as
    (components from fd, permission bits); None when it holds anything but directories.
    An explicit stack: no recursion on the tree's depth."""
    out: list[tuple[list[bytes], int]] = []
    stack = [[name]]
    with Reach(fd) as reach:
        while stack:
            rel = stack.pop()
            dfd = reach.open(rel)
            try:
                out.append((rel, stat.S_IMODE(os.fstat(dfd).st_mode)))
                entries = beneath.scan(dfd)
            finally:
                os.close(dfd)
            for n, st in entries:
                if not stat.S_ISDIR(st.st_mode):
                    return None
                stack.append([*rel, n])
    return out


def _only_dirs(fd: int, name: bytes) -> bool:
    return _dirs_below(fd, name) is not None


def _rmdirs(fd: int, name: bytes, path: bytes, journal: Journal | None) -> None:
    """rmdir a tree of empty directories, deepest first; each is noted after those it held, so
    that the undo makes it again before them."""
    dirs = _dirs_below(fd, name)
    if dirs is None:
        raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), os.fsdecode(path))
    prefix = path.rsplit(b"/", 1)[0] + b"/" if b"/" in path else b""
    with Reach(fd) as reach:
        for rel, bits in reversed(dirs):  # children before their parent
            pfd = reach.open(rel[:-1])
            try:
                os.rmdir(rel[-1], dir_fd=pfd)
            finally:
                os.close(pfd)
            if journal is not None:
                here = prefix + b"/".join(rel)
                journal.note(here, partial(_mkdir, journal.root_fd, here, bits))


def delete(root_fd: int, path: bytes, journal: Journal, before: Entry | None,
           before_sig: Sig | None, *, keep_dirs: frozenset[bytes] = frozenset()) -> None:
    """Remove the path (no following), then every parent dir this left empty but those in
    keep_dirs (they get files of this apply: their bits stay). Gone already: nothing to do."""
    parts = components(path)
    fd, _ = _open_dir(root_fd, parts)
    if fd is None:
        return
    try:
        st = _stat_at(fd, parts[-1])
        if st is None:
            return
        _check(path, st, before, before_sig)
        if stat.S_ISDIR(st.st_mode):
            _remove_dir(fd, parts[-1], path, journal)
        elif not journal.keep(fd, parts[-1], path, move=True):
            assert before is not None
            keep_bits = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None
            os.unlink(parts[-1], dir_fd=fd)
            journal.note(path, partial(write, root_fd, path, before, keep_bits, None))
    finally:
        os.close(fd)
    for depth in range(len(parts) - 1, 0, -1):
        here = b"/".join(parts[:depth])
        if here in keep_dirs:
            return
        fd, _ = _open_dir(root_fd, parts[:depth])
        if fd is None:
            return
        try:
            if not _empty(fd, parts[depth - 1]):
                return  # stop climbing
            _remove_dir(fd, parts[depth - 1], here, journal)
        except OSError:
            return  # gone, or not ours to remove: stop climbing
        finally:
            os.close(fd)
