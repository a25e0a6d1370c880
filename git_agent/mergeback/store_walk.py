"""Walk and remove a session's folder however deep the agent made it: explicit stacks, every
directory reached by fd from the folder's parent (no path grows past PATH_MAX, no symlink is
followed), never recursion on the tree's depth."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from git_agent import beneath
from git_agent.mergeback.reach import Reach
from git_agent.mergeback.unlinker import Unlinker


def _open_parent(path: Path) -> tuple[int, bytes]:
    return beneath.open_root(path.parent), os.fsencode(path.name)


def _let_in(fd: int, name: bytes) -> None:
    """Give the directory name of dir fd rwx for its owner: overlayfs leaves d--------- dirs
    in its work dir. Through an O_PATH fd: the entry itself, never a link."""
    opath = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    try:
        if stat.S_IMODE(os.fstat(opath).st_mode) & 0o700 != 0o700:
            os.chmod(beneath.proc_path(opath), 0o700)
    finally:
        os.close(opath)


def remove_tree(path: Path) -> None:
    """Remove path and everything below it (nothing when it is gone): the files first, a few
    threads at a time (unlinker), then the directories, deepest first."""
    try:
        parent_fd, name = _open_parent(path)
    except FileNotFoundError:  # no store yet (a session known by its refs alone)
        return
    try:
        try:
            st = beneath.lstat(parent_fd, name)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            beneath.unlink(parent_fd, name)
            return
        dirs: list[list[bytes]] = []  # parents before children
        stack: list[list[bytes]] = [[name]]
        with Reach(parent_fd) as reach, Unlinker() as unlinker:
            while stack:
                rel = stack.pop()
                pfd = reach.open(rel[:-1])
                try:
                    _let_in(pfd, rel[-1])
                    fd = beneath.open_dir(pfd, rel[-1:])
                finally:
                    os.close(pfd)
                dirs.append(rel)
                try:
                    first = True
                    for n, est in beneath.scan(fd):
                        if stat.S_ISDIR(est.st_mode):
                            stack.append([*rel, n])
                        else:
                            unlinker.add(fd, n, same_dir=not first)
                            first = False
                finally:
                    os.close(fd)
        with Reach(parent_fd) as reach:
            for rel in reversed(dirs):  # its content is gone: remove it from its parent
                pfd = reach.open(rel[:-1])
                try:
                    beneath.rmdir(pfd, rel[-1])
                finally:
                    os.close(pfd)
    finally:
        os.close(parent_fd)


def _entries(path: Path) -> Iterator[os.stat_result]:
    """The lstat of every entry below path (unreadable dirs skipped)."""
    try:
        parent_fd, name = _open_parent(path)
    except OSError:
        return
    try:
        stack = [[name]]
        with Reach(parent_fd) as reach:
            while stack:
                rel = stack.pop()
                try:
                    fd = reach.open(rel)
                except OSError:
                    continue
                try:
                    entries = beneath.scan(fd)
                finally:
                    os.close(fd)
                for n, st in entries:
                    yield st
                    if stat.S_ISDIR(st.st_mode):
                        stack.append([*rel, n])
    finally:
        os.close(parent_fd)


def disk_usage(path: Path) -> int:
    """Bytes used below path (allocated blocks, never following links; unreadable dirs
    skipped)."""
    return sum(st.st_blocks * 512 for st in _entries(path))
