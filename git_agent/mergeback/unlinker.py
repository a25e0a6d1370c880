"""Remove many files at once: a few threads unlink, each a directory's batch at a time.

Removing a file waits on the filesystem's journal far more than on the CPU (0.1-0.5 ms each on
a busy ext4), and unlinks in different directories do not wait for each other: four threads
remove 20,000 files 2-4x faster than one (and than `rm -rf`). Every unlink is relative to an
fd on its directory (opened without following links by the caller): nothing else is reached."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

THREADS = 4
MAX_PENDING = 64  # directory batches in flight (each holds an fd)


class Unlinker:
    """unlink(dir_fd, name) in batches: `add` takes a dup of dir_fd per batch; `close` waits
    for all and raises the first error (others are done meanwhile). A context manager."""

    def __init__(self, done: Callable[[int], None] | None = None):
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="unlink")
        self._pending: list[Future[None]] = []
        self._batch: tuple[int, list[bytes]] | None = None
        self._done = done
        self._lock = threading.Lock()
        self.error: OSError | None = None

    def add(self, dir_fd: int, name: bytes, *, same_dir: bool) -> None:
        """Queue name of dir_fd; same_dir: dir_fd is the directory of the last add."""
        if self._batch is None or not same_dir:
            self._flush()
            self._batch = (os.dup(dir_fd), [])
        self._batch[1].append(name)

    def _flush(self) -> None:
        if self._batch is None:
            return
        fd, names = self._batch
        self._batch = None
        self._pending.append(self._pool.submit(self._run, fd, names))
        if len(self._pending) >= MAX_PENDING:
            self._pending.pop(0).result()

    def _run(self, fd: int, names: list[bytes]) -> None:
        try:
            for name in names:
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    with self._lock:
                        self.error = self.error or e
            if self._done is not None:
                with self._lock:
                    self._done(len(names))
        finally:
            os.close(fd)

    def close(self) -> None:
        try:
            self._flush()
            for f in self._pending:
                f.result()
        finally:
            self._pool.shutdown(wait=True)
        if self.error is not None:
            raise self.error

    def __enter__(self) -> Unlinker:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:  # already failing: wait for the threads, keep that error
            with contextlib.suppress(OSError):
                self.close()
            return
        self.close()
