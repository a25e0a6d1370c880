"""Does a session's upper dir hold changes its branch does not have? Told from meta.json and
one look at the upper dir, never by walking it: `list` asks it of every session.

The upper dir changes only while an agent runs in it, so it is ahead of the branch when a
run ended after the last capture (`run --no-capture`, or a capture that failed) and left
something in it; while a run goes on, the branch may lag at any moment. Limits: a change made
to the upper dir by hand (not through a run) is not seen, and a run that wrote and removed the
same files still counts as ahead until `git agent capture` (which then says it found nothing
new)."""

from __future__ import annotations

import os

from git_agent.session.store import Session


def uncaptured(s: Session) -> bool:
    """Did a run end after the session's last capture, leaving its upper dir non-empty?"""
    m = s.read_meta()
    end = m.last_run.end if m.last_run is not None else None
    if end is None or (m.captured_at is not None and m.captured_at >= end):
        return False
    try:
        with os.scandir(s.upper) as it:
            return any(True for _ in it)
    except OSError:
        return False


def hint(s: Session) -> str:
    """What list and review say of a session that is uncaptured()."""
    return (f"session {s.name!r} holds changes {s.branch_name} does not have (its last run was "
            f"not captured): `git agent capture {s.name}` brings them there")
