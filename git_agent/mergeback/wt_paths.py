"""Worktree paths for apply: checked components, and parent dirs reached by fd (cached).

Every directory is opened one component at a time with O_NOFOLLOW (beneath): no symlink is
followed. Below a root opened with `open_root` (until `close_root`), the fd of each parent
directory reached is kept (a few hundred at most) and handed out again as a dup, so that
writing 20,000 files in 200 dirs opens 200 dirs, not 60,000 path components. A cached fd
stays on its directory if that is renamed meanwhile: only the user can do that to the
worktree (an agent writes to its overlay only), and apply drops the cache whenever it
removes or moves a directory itself (`forget`)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

from git_agent import beneath, gittree, ui
from git_agent.errors import GitAgentError

MAX_CACHED = 256


@functools.lru_cache(maxsize=1 << 16)
def _checked(path: bytes) -> tuple[bytes, ...]:
    try:
        parts = beneath.parts(path)
    except ValueError:
        parts = []
    if not parts:
        raise GitAgentError(f"refusing the path {path!r}: not a plain relative path")
    if any(_dotgit(p) for p in parts):  # .git, and .GIT, git~1, .git. ...
        raise GitAgentError(
            f"refusing to write {ui.quote_path(path)}: paths under .git are never applied; "
            "reject it with `git agent apply -i` (r)")
    return tuple(parts)


@functools.lru_cache(maxsize=1 << 14)
def _dotgit(name: bytes) -> bool:
    return gittree.is_dotgit(name)


def components(path: bytes) -> tuple[bytes, ...]:
    """beneath.parts of a worktree path, never empty; a spelling of .git is refused."""
    return _checked(path)


class _Cache:
    def __init__(self, root_fd: int):
        self.root_fd = root_fd
        self.fds: dict[tuple[bytes, ...], int] = {}

    def put(self, key: tuple[bytes, ...], fd: int) -> None:
        if len(self.fds) >= MAX_CACHED:
            self.clear()
        self.fds[key] = os.dup(fd)

    def clear(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


_caches: dict[int, tuple[tuple[int, int], _Cache]] = {}


def open_root(path: bytes | str | os.PathLike[str]) -> int:
    """beneath.open_root, and a cache of the dirs reached below it until close_root."""
    fd = beneath.open_root(path)
    st = os.fstat(fd)
    forget_root(fd)
    _caches[fd] = ((st.st_dev, st.st_ino), _Cache(fd))
    return fd


def forget_root(fd: int) -> None:
    got = _caches.pop(fd, None)
    if got is not None:
        got[1].clear()


def close_root(fd: int) -> None:
    """Close a root of open_root, and its cache."""
    forget_root(fd)
    os.close(fd)


def forget() -> None:
    """A directory was removed or moved: no cached fd may stand for its path any more."""
    for _, c in _caches.values():
        c.clear()


def _mine(root_fd: int) -> _Cache | None:
    """root_fd's cache, if it is still the directory it was made for."""
    got = _caches.get(root_fd)
    if got is None:
        return None
    st = os.fstat(root_fd)
    if got[0] != (st.st_dev, st.st_ino):  # closed without close_root, its number reused
        forget_root(root_fd)
        return None
    return got[1]


def reach(root_fd: int, comps: Sequence[bytes]) -> tuple[int, int, OSError | None]:
    """beneath.reach, from the nearest cached directory on the way."""
    c = _mine(root_fd) if comps else None
    if c is None:
        return beneath.reach(root_fd, comps)
    key = tuple(comps)
    fd = c.fds.get(key)
    if fd is not None:
        return os.dup(fd), len(key), None
    k = len(key) - 1
    while k > 0 and key[:k] not in c.fds:
        k -= 1
    got, n, err = beneath.reach(c.fds[key[:k]] if k else root_fd, key[k:])
    if err is None:
        c.put(key, got)
    return got, k + n, err


def open_parent(root_fd: int, parts: Sequence[bytes]) -> tuple[int | None, bytes | None]:
    """An fd on the dir holding the last part, or (None, the first parent that is not a dir;
    None when one is missing). PermissionError: a dir of yours apply may not enter."""
    fd, n, err = reach(root_fd, parts[:-1])
    if err is None:
        return fd, None
    os.close(fd)
    if isinstance(err, PermissionError):  # not absent: yours, unreadable
        raise err
    return None, None if isinstance(err, FileNotFoundError) else b"/".join(parts[: n + 1])


def walk_create(root_fd: int, parts: Sequence[bytes],
                made: Callable[[bytes], None] | None = None) -> int:
    """An fd on the parent dir of the last part, creating directories (never following
    links); made(path) hears of each directory created."""
    c = _mine(root_fd)
    key = tuple(parts[:-1])
    if c is not None and key in c.fds:
        return os.dup(c.fds[key])

    def note(depth: int) -> None:
        if made is not None:
            made(b"/".join(parts[:depth]))

    fd = beneath.open_dir(root_fd, parts[:-1], made=note)
    if c is not None:
        c.put(key, fd)
    return fd
