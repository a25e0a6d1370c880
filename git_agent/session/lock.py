"""The session lock: an flock its holder (run, apply, drop) writes its name and pid beside."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from git_agent.errors import SessionBusy

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from pathlib import Path

    from git_agent.session.store import Session

_DOING = {
    "run": "is already running; pick another name with -s NAME, or wait for it to end",
    "apply": "is being applied by another git agent; wait for it to finish",
    "drop": "is being dropped",
    "fetch": "is being fetched from its remote; wait for it to finish",
    "busy": "is busy (another git agent holds it); try again in a moment",
}


def holder(lock_path: Path) -> str | None:
    """What holds a session's lock: "run", "apply" or "drop"; "busy" when its holder did not
    say (it is starting, or is a git agent from before this was written down); None when
    free."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            words = os.read(fd, 64).decode(errors="replace").split()
            if (len(words) == 2 and words[0] in _DOING and words[1].isdigit()
                    and os.path.exists(f"/proc/{words[1]}")):
                return words[0]
            return "busy"  # (the text of a holder that died: not this one's)
        return None
    finally:
        os.close(fd)


def busy_message(session: Session, doing: str) -> str:
    return f"session {session.name!r} {_DOING[doing]}"


class Lock:
    """An exclusive flock on the session, released by the kernel when its holder dies. Its
    holder writes what it does there ("run", "apply", "drop" and its pid), for the others."""

    def __init__(self, session: Session, doing: str = "run"):
        assert doing in _DOING
        self.session = session
        self.doing = doing
        self.fd: int | None = None

    def __enter__(self) -> Lock:
        fd = os.open(self.session.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + 0.5
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                doing = holder(self.session.lock_path)
                # None: only a look of `list` or `review` (a shared lock for an instant)
                if doing is not None or time.monotonic() > deadline:
                    os.close(fd)
                    raise SessionBusy(busy_message(self.session, doing or "busy"),
                                      doing=doing or "busy") from None
                time.sleep(0.01)
        with contextlib.suppress(OSError):  # a word for the others, not worth failing for
            os.ftruncate(fd, 0)  # (a full disk: drop and apply are what frees space)
            os.pwrite(fd, f"{self.doing} {os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:  # the text stays: holder() trusts it only with the lock held
            os.close(self.fd)
            self.fd = None
