"""What apply took out of a session (applied, or discarded from it), noted in the session's
folder, so that asking for such a path again says so instead of "not among the changes"."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from git_agent.session import Session

APPLIED, DISCARDED = b"applied", b"discarded"


def _file(s: Session) -> str:
    return os.path.join(s.dir, "applied")


def note(s: Session, applied: Iterable[bytes], discarded: Iterable[bytes]) -> None:
    """Append the paths (best effort: a note, never a reason to fail an apply)."""
    out = b"".join(APPLIED + b"\0" + p + b"\0" for p in applied)
    out += b"".join(DISCARDED + b"\0" + p + b"\0" for p in discarded)
    if not out:
        return
    with contextlib.suppress(OSError):
        fd = os.open(_file(s), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, out)
        finally:
            os.close(fd)


def _read(s: Session) -> list[tuple[bytes, bytes]]:
    try:
        fd = os.open(_file(s), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        fields = f.read().split(b"\0")
    return list(zip(fields[::2], fields[1::2], strict=False))


def done_at(s: Session, spec: bytes) -> bytes | None:
    """APPLIED when a path at or below spec (a path from the worktree root) was last noted
    applied, else DISCARDED when one was discarded; None when none is noted there."""
    last: dict[bytes, bytes] = {}
    for what, p in _read(s):
        if not spec or p == spec or p.startswith(spec.rstrip(b"/") + b"/"):
            last[p] = what
    if not last:
        return None
    kinds = set(last.values())
    return APPLIED if APPLIED in kinds else DISCARDED
