"""apply's undo journal: how to take back each change made to the worktree so far.

What a change replaces or removes is kept aside, not copied: hard-linked (a file written
over) or moved (a file deleted, a directory emptied) into a directory of git's own, so that
undoing is a rename back, which needs no free space and gives back the very inode (owner,
bits, links, extended attributes). Where that cannot be (another filesystem), the caller
notes how to write back the bytes apply read instead."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

from git_agent import beneath, ui
from git_agent.errors import ApplyFailed, GitAgentError
from git_agent.mergeback import wt_paths
from git_agent.mergeback.unlinker import Unlinker


class Journal:
    """How to undo each change made so far; undo() takes them back, newest first. What the
    changes replace is kept in `spare` (a directory to create, on the worktree's filesystem
    if it can be) until done() or undo()."""

    def __init__(self, root_fd: int, spare: Path | None):
        self.root_fd = root_fd
        self._undo: list[tuple[bytes, Callable[[], None]]] = []
        self._spare_path = spare
        self._spare_fd: int | None = None
        self._kept: list[bytes] = []
        self._elsewhere = False  # the spare dir is on another filesystem than the worktree

    def note(self, path: bytes, undo: Callable[[], None]) -> None:
        self._undo.append((path, undo))

    def _spare(self) -> int | None:
        if self._spare_fd is None and self._spare_path is not None:
            try:
                os.mkdir(self._spare_path, 0o700)
                self._spare_fd = os.open(self._spare_path, beneath.DIR_FLAGS)
            except OSError:
                self._spare_path = None  # keep nothing aside: bytes are written back instead
        return self._spare_fd

    def keep(self, fd: int, name: bytes, path: bytes, *, move: bool) -> bool:
        """Keep the entry `name` of dir fd (the worktree's `path`) aside before it is written
        over (move=False: a hard link) or removed (move=True: moved there; it is gone from
        the worktree), and note how to put it back. False: it could not be kept this way."""
        spare = self._spare()
        if spare is None or self._elsewhere:
            return False
        kept = str(len(self._kept)).encode()
        try:
            if move:
                os.rename(name, kept, src_dir_fd=fd, dst_dir_fd=spare)
            else:
                os.link(name, kept, src_dir_fd=fd, dst_dir_fd=spare, follow_symlinks=False)
        except OSError as e:  # a link the kernel refuses (protected_hardlinks), ...
            if e.errno == errno.EXDEV:  # the spare dir is on another filesystem: no more
                self._elsewhere = True
            return False
        self._kept.append(kept)
        self.note(path, partial(self._bring_back, path, kept))
        return True

    def _bring_back(self, path: bytes, kept: bytes) -> None:
        assert self._spare_fd is not None
        fd = wt_paths.walk_create(self.root_fd, wt_paths.components(path))
        try:
            os.rename(kept, path.rsplit(b"/", 1)[-1], src_dir_fd=self._spare_fd, dst_dir_fd=fd)
        finally:
            os.close(fd)

    def undo(self) -> list[str]:
        """Take every change back; returns what could not be (a line per path)."""
        wt_paths.forget()  # the undo puts directories back where the changes removed them
        failed = []
        while self._undo:
            path, step = self._undo.pop()
            try:
                step()
            except Exception as e:  # noqa: BLE001 - each step is tried whatever the last did
                why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                failed.append(f"{ui.quote_path(path)}: {why}")
        if failed and self._kept and self._spare_path is not None:
            failed.append(f"(what could not be put back is kept in {self._spare_path})")
        else:
            self._drop_spare()
        return failed

    def done(self, *, later: bool = False) -> Callable[[], None]:
        """All written: drop what was kept aside. later: in a thread, while the caller goes
        on (it has nothing left to undo); the function returned waits for it to end."""
        self._undo.clear()
        if not later or self._spare_fd is None:
            self._drop_spare()
            return lambda: None
        t = threading.Thread(target=self._drop_spare, kwargs={"shown": False},
                             name="drop-spare")
        t.start()
        return t.join

    def _drop_spare(self, *, shown: bool = True) -> None:
        if self._spare_fd is None:
            return
        progress = ui.Progress("removing the files it replaced", len(self._kept) if shown else 0)
        dirs = []
        with contextlib.suppress(OSError), Unlinker(progress.step) as unlinker:
            for i, kept in enumerate(self._kept):
                try:
                    st = os.stat(kept, dir_fd=self._spare_fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    dirs.append(kept)
                else:
                    unlinker.add(self._spare_fd, kept, same_dir=i % 256 != 0)
        for kept in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(kept, dir_fd=self._spare_fd)
        progress.done()
        os.close(self._spare_fd)
        self._spare_fd = None
        if self._spare_path is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._spare_path)




def take_back(journal: Journal, e: BaseException, *, what: str, where: str,
              nothing: str) -> None:
    """After e: undo every change. An OSError or GitAgentError becomes one ApplyFailed saying
    `{what} failed{where}: why; {nothing}` (or what could not be put back); anything else
    returns, for the caller to re-raise."""
    failed = journal.undo()
    if not isinstance(e, (OSError, GitAgentError)):
        return
    why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    if failed:
        lines = "\n".join(f"  {line}" for line in failed)
        raise ApplyFailed(f"{what} failed{where}: {why}; these paths could not be put back as "
                          f"they were:\n{lines}") from e
    raise ApplyFailed(f"{what} failed{where}: {why}; {nothing}") from e
