"""Sessions: names, the per-worktree store outside the worktree and agent home, lock, metadata."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import quote, unquote  # pathlib imports it anyway

from git_agent.errors import SessionBusy, UsageError
from git_agent.record import Record
from git_agent.repo import Worktree

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from typing import Any

DETACHED_NAME = "detached"
BRANCH_PREFIX = "refs/heads/agent/"
BASE_PREFIX = "refs/agent-base/"


def state_root() -> Path:
    """$XDG_STATE_HOME/git-agent, default ~/.local/state/git-agent."""
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "git-agent"


def worktree_store(worktree: Worktree) -> Path:
    """The folder holding every session of one worktree."""
    digest = _sha256(os.fsencode(worktree.root))[:12]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", worktree.root.name) or "root"
    return state_root() / f"{name}-{digest}"


def _sha256(data: bytes) -> str:
    """hashlib's sha256, without importing hashlib and OpenSSL (~2 ms of launch)."""
    try:
        from _sha2 import sha256  # type: ignore[import-not-found, unused-ignore]  # CPython 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found, unused-ignore]  # 3.11
        except ImportError:
            from hashlib import sha256
    digest: str = sha256(data).hexdigest()
    return digest


_BAD_NAME = re.compile(r"\s")
# What git's check_refname_format refuses (refs.c, flags 0): control characters, space, DEL,
# ~ ^ : ? * [ \, "..", "@{", a component that is empty, starts with "." or ends with ".lock",
# a name ending with "." or being "@", fewer than two components.
_REF_BAD_CHAR = re.compile(rb"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{")


def refname_ok(ref: str) -> bool:
    """Would `git check-ref-format ref` accept it? (The same rules, without a process.)"""
    try:
        raw = os.fsencode(ref)
    except UnicodeError:
        return False
    if raw == b"@" or raw.endswith(b".") or _REF_BAD_CHAR.search(raw):
        return False
    parts = raw.split(b"/")
    return len(parts) >= 2 and all(
        p and not p.startswith(b".") and not p.endswith(b".lock") for p in parts)


def check_name(name: str) -> str:
    """Refuse a session name that cannot be the branch agent/<name>; return it unchanged."""
    why = None
    if not name:
        why = "it is empty"
    elif _BAD_NAME.search(name):
        why = "it contains whitespace"
    elif name.startswith("-"):
        why = "it starts with '-'"
    elif ".." in name:
        why = "it contains '..'"
    elif (
        name.endswith(".lock") or "/" in name and any(c.endswith(".lock") for c in name.split("/"))
    ):
        why = "it ends with '.lock'"
    elif name.startswith("/") or name.endswith("/") or "//" in name:
        why = "it has an empty path component"
    elif not refname_ok(BRANCH_PREFIX + name):
        why = "git check-ref-format refuses it"
    elif len(quote(name, safe="")) > 240:  # the session folder's name: one path component
        why = "it is too long"
    if why:
        raise UsageError(
            f"invalid session name {name!r}: {why} (it must work as branch agent/NAME)"
        )
    return name


def default_name(worktree: Worktree) -> str:
    """The session named after the current branch, or 'detached' on a detached HEAD."""
    ref = worktree.head_ref()
    if ref and ref.startswith("refs/heads/"):
        return ref[len("refs/heads/") :]
    return DETACHED_NAME


class Session(Record):
    __slots__ = ("name", "dir")

    def __init__(self, name: str, dir: Path):
        self.name = name
        self.dir = dir

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def git_upper(self) -> Path:
        """Upper dir of the common git dir's own overlay (linked worktrees only)."""
        return self.dir / "git-upper"

    @property
    def git_work(self) -> Path:
        return self.dir / "git-work"

    @property
    def cow_dir(self) -> Path:
        return self.dir / "cow"

    @property
    def meta_path(self) -> Path:
        return self.dir / "meta.json"

    @property
    def lock_path(self) -> Path:
        return self.dir / "lock"

    @property
    def branch(self) -> str:
        return BRANCH_PREFIX + self.name

    @property
    def branch_name(self) -> str:
        """The branch as people name it: agent/NAME."""
        return self.branch.removeprefix("refs/heads/")

    @property
    def base_ref(self) -> str:
        return BASE_PREFIX + self.name

    def exists(self) -> bool:
        return self.meta_path.exists() or self.upper.is_dir()

    def read_meta(self) -> dict[str, Any]:
        try:
            data = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_meta(self, data: dict[str, Any]) -> None:
        tmp = self.meta_path.with_name(f".meta.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.meta_path)

    def update_meta(self, **changes: Any) -> dict[str, Any]:
        data = self.read_meta()
        data.update(changes)
        self.write_meta(data)
        return data

    def holder(self) -> str | None:
        """What holds the session's lock: "run", "apply" or "drop"; "busy" when its holder
        did not say (it is starting, or is a git agent from before this was written down);
        None when free."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_CLOEXEC)
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

    def is_running(self) -> bool:
        """True while an agent runs in the session (a run holds its lock)."""
        return self.holder() == "run"


_DOING = {
    "run": "is already running; pick another name with -s NAME, or wait for it to end",
    "apply": "is being applied by another git agent; wait for it to finish",
    "drop": "is being dropped",
    "busy": "is busy (another git agent holds it); try again in a moment",
}


def busy_message(session: Session, doing: str) -> str:
    return f"session {session.name!r} {_DOING[doing]}"


def session_dir(store: Path, name: str) -> Path:
    return store / "sessions" / quote(name, safe="")


def get(worktree: Worktree, name: str) -> Session:
    return Session(name=check_name(name), dir=session_dir(worktree_store(worktree), name))


def list_sessions(worktree: Worktree) -> list[Session]:
    root = worktree_store(worktree) / "sessions"
    try:
        entries = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [Session(name=unquote(e), dir=root / e) for e in entries if not e.startswith(".")]


def create(worktree: Worktree, session: Session) -> None:
    """Make the session folder (idempotent); refuse names that clash as branches."""
    store = worktree_store(worktree)
    if not session.dir.exists():
        for other in list_sessions(worktree):
            a, b = other.name + "/", session.name + "/"
            if a.startswith(b) or b.startswith(a):
                raise UsageError(
                    f"session {session.name!r} clashes with session {other.name!r}: branches "
                    f"agent/{session.name} and agent/{other.name} cannot both exist"
                )
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    (store / "worktree").write_text(str(worktree.root) + "\n")
    for d in (session.dir, session.upper, session.work):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not session.meta_path.exists():
        session.write_meta(
            {"name": session.name, "worktree": str(worktree.root), "created": time.time()}
        )


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
                doing = self.session.holder()
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


def remove(session: Session) -> None:
    """Delete the session folder, including the d--------- dirs overlayfs leaves in work/."""
    if not session.dir.exists():
        return
    for dirpath, dirnames, _ in os.walk(session.dir):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, 0o700)  # before os.walk descends into it
    import shutil

    shutil.rmtree(session.dir)


def upper_of(*, worktree: Worktree, session: Session, real: Path) -> Path | None:
    """Where a write to `real` (in the worktree or the common git dir) lands in the session."""
    for lower, upper in ((worktree.root, session.upper), (worktree.common_dir, session.git_upper)):
        if real == lower or lower in real.parents:
            return upper / real.relative_to(lower)
    return None


def has_changes(*, session: Session, worktree: Worktree) -> bool:
    """Cheap, for `run`: does the session hold anything to capture (files, or git writes)?"""
    from git_agent.capture import overlay

    if overlay.count(session.upper) > 0:
        return True
    for real in (
        worktree.git_dir / "HEAD",
        worktree.common_dir / "refs",
        worktree.common_dir / "packed-refs",
    ):
        up = upper_of(worktree=worktree, session=session, real=real)
        if up is not None and os.path.lexists(up):
            return True
    return False
