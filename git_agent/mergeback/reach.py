"""Reach the directories of a walk at any depth by fd, cheaply and without recursion.

A walk with an explicit stack asks for one directory after another, each near the last. Opening
each from the walk's root costs its depth in opens (quadratic on a 1,500-deep tree), and holding
an fd per level of the current path runs out of fds (1,024 by default). Reach keeps an fd on
every STEP-th directory of the path it last reached: a next directory costs at most STEP opens
from the nearest of those, and at most depth/STEP fds are held. Every open goes through
beneath's O_NOFOLLOW rule: no symlink is followed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType

from git_agent import beneath

STEP = 32


class Reach:
    """fds on directories below root_fd, given as lists of components; a context manager that
    closes what it keeps (root_fd stays the caller's)."""

    def __init__(self, root_fd: int):
        self.root_fd = root_fd
        self._path: list[bytes] = []  # the components the anchors lead along
        self._anchors: list[int] = []  # fds on _path[:STEP], _path[:2*STEP], ...

    def open(self, rel: Sequence[bytes]) -> int:
        """A new fd on the directory rel (the caller closes it). OSError as beneath.open_dir."""
        common = 0
        for a, b in zip(self._path, rel, strict=False):
            if a != b:
                break
            common += 1
        keep = min(common, len(rel)) // STEP  # anchors still on rel's way
        for fd in self._anchors[keep:]:
            os.close(fd)
        del self._anchors[keep:]
        self._path = list(rel[: keep * STEP])
        start = self._anchors[-1] if self._anchors else self.root_fd
        fd = os.dup(start)
        try:
            for i in range(keep * STEP, len(rel)):
                nfd = beneath.open_dir(fd, [rel[i]])
                os.close(fd)
                fd = nfd
                if (i + 1) % STEP == 0:
                    self._anchors.append(os.dup(fd))
                    self._path = list(rel[: i + 1])
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        for fd in self._anchors:
            os.close(fd)
        self._anchors.clear()
        self._path.clear()

    def __enter__(self) -> Reach:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
