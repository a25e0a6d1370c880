"""The process the user started: when `git agent` runs through git, git's wrapper; the sandbox
ends with it (a `kill -9` of it or of git agent leaves no agent running)."""

from __future__ import annotations

import os

_owner: int | None = None  # a pidfd of git's wrapper, when git started git agent
_gone = False  # git's wrapper had ended before we could watch it


def watch_parent() -> None:
    """Called first by `git-agent`: when its parent is git (`git agent ...` runs `git-agent`
    as git's child, which then only waits for it), remember that process by a pidfd. Started
    any other way (`git-agent`, `python -m git_agent`), git agent is the process the user
    started, and bwrap's --die-with-parent already ties the sandbox to it."""
    global _owner, _gone
    ppid = os.getppid()
    try:
        with open(f"/proc/{ppid}/comm", "rb") as f:
            if f.read().strip() != b"git":
                return
        fd = os.pidfd_open(ppid)
    except OSError:
        return
    if os.getppid() != ppid:  # it ended meanwhile (we were given to a reaper): the fd is not it
        os.close(fd)
        _gone = True
        return
    os.set_inheritable(fd, False)
    _owner = fd


def owner() -> int | None:
    """A pidfd that becomes readable when the process the user started ends, or None when
    that process is git agent itself."""
    return _owner


def owner_gone() -> bool:
    """True once git's wrapper, which started git agent, has ended."""
    if _gone:
        return True
    if _owner is None:
        return False
    import select

    return bool(select.select([_owner], [], [], 0)[0])


def adopt(pid: int) -> None:
    """In a run forked by `run --attempts`: when git agent was not started by git, the process
    that forked it is the one the user started, and the sandbox ends with it as it would with
    git's wrapper (a `kill -9` of it leaves no agent running)."""
    global _owner
    if _owner is not None or _gone:
        return
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    if os.getppid() != pid:
        os.close(fd)
        return
    os.set_inheritable(fd, False)
    _owner = fd
