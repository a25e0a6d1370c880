"""While the agent runs: the base snapshot in a thread, and the cheap looks at the session's
overlay that run makes before and after (files changed under it, anything to capture)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from git_agent import proc, repo
from git_agent import session as sessions

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from typing import Any


class BaseSnapshot(threading.Thread):
    """The base snapshot runs while the agent does; nothing waits for it until capture."""

    def __init__(self, worktree: repo.Worktree, session: sessions.Session,
                 hide: Sequence[Path] = (), given: Any = None):
        super().__init__(daemon=True, name="git-agent-base")
        self.worktree = worktree
        self.session = session
        self.hide = hide
        self.result: Any = None
        self.error: BaseException | None = None
        self.given = given  # a snapshot taken already (run --attempts): only recorded
    def start(self) -> None:
        """Import in the calling (main) thread what both threads need, then start. Two threads
        importing at once can deadlock on module locks, which Python breaks by handing one of
        them a partially initialised module ("partially initialized module 'typing'"): so
        this thread imports nothing, and the capture's imports (pygit2: ~50 ms) are done here
        while its git runs and the agent does."""
        from git_agent.capture import snapshot  # noqa: F401

        super().start()
        from git_agent.capture import commit  # noqa: F401

    def run(self) -> None:
        from git_agent.capture import snapshot as base  # imported by start(): a lookup

        try:
            self.result = self.given or base.snapshot(
                worktree=self.worktree, scratch=self.session.dir, hide=self.hide)
            # recorded now, so `review` of the running session can capture a live view
            base.keep(worktree=self.worktree, session=self.session, base=self.result)
        except BaseException as e:  # noqa: BLE001 - reported by the capture step
            self.error = e

    def stop(self) -> None:
        """Nobody needs the snapshot: kill its git, and wait for the thread to end. It must
        not still run while the interpreter exits: an import of pygit2 then (or any C code
        called meanwhile) can crash it."""
        if not self.is_alive():
            return  # never started, or done
        proc.stop_background()
        self.join()


def stale_paths(session: sessions.Session, worktree: repo.Worktree) -> list[str]:
    """Paths the session holds that changed in the real worktree since its last run ended."""
    last = session.read_meta().last_run
    end = last.end if last is not None else None
    if end is None or not session.upper.is_dir():
        return []
    from git_agent.capture import overlay

    out: list[str] = []
    for ch in overlay.walk(session.upper):  # by directory fds: never follows a symlink
        if ch.kind not in (overlay.Kind.FILE, overlay.Kind.SYMLINK):
            continue
        rel = os.fsdecode(ch.path)
        try:
            st = os.lstat(worktree.root / rel)
        except OSError:
            continue
        if max(st.st_mtime, st.st_ctime) > end:
            out.append(rel)
    return sorted(out)


def has_changes(*, session: sessions.Session, worktree: repo.Worktree) -> bool:
    """Cheap: does the session hold anything to capture (files, or git writes)?"""
    from git_agent.capture import overlay

    if overlay.count(session.upper) > 0:
        return True
    for real in (
        worktree.git_dir / "HEAD",
        worktree.common_dir / "refs",
        worktree.common_dir / "packed-refs",
    ):
        up = sessions.upper_of(worktree=worktree, session=session, real=real)
        if up is not None and os.path.lexists(up):
            return True
    return False
