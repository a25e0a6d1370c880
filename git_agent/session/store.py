"""The session store: one folder per session, per worktree, outside the worktree and agent home."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from pathlib import Path
from urllib.parse import quote, unquote  # pathlib imports it anyway

from git_agent import proc
from git_agent.errors import GitAgentError, UsageError
from git_agent.record import Record
from git_agent.repo import Worktree, find_worktree
from git_agent.session import lock, meta
from git_agent.session.names import BASE_PREFIX, BRANCH_PREFIX, check_name
from git_agent.ui import quote_path

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

def state_root() -> Path:
    """$XDG_STATE_HOME/git-agent, default ~/.local/state/git-agent."""
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "git-agent"


def worktree_store(worktree: Worktree) -> Path:
    """The folder holding every session of one worktree."""
    return store_of(worktree.root)


def store_of(root: Path) -> Path:
    """The store of the worktree at `root`, found by its path alone (whether it is there now
    or not)."""
    digest = _sha256(os.fsencode(root))[:12]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", root.name) or "root"
    return state_root() / f"{name}-{digest}"


@contextlib.contextmanager
def repository_lock(worktree: Worktree) -> Iterator[None]:
    """An exclusive flock every worktree of the repository takes to decide who owns a session
    name and make its folder, as one step. In the state root (where the stores are, so only
    git agent's own files; the repository is not written), keyed by the common git dir that
    `git worktree list` reads: the same file for every worktree it lists."""
    root = state_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = _sha256(os.fsencode(os.path.realpath(worktree.common_dir)))[:16]
    fd = os.open(root / f".repo-{key}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for a `git worktree list` and a few mkdirs
        yield
    finally:
        os.close(fd)


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

    def read_meta(self) -> meta.Meta:
        """meta.json as a typed record (an empty one when missing or unreadable)."""
        return meta.read(self.meta_path)

    def update_meta(self, **changes: Any) -> meta.Meta:
        """Change some fields of meta.json (read, replace, write atomically)."""
        m = meta.read(self.meta_path).replace(**changes)
        meta.write(self.meta_path, m)
        return m

    def holder(self) -> str | None:
        """What holds the session's lock (lock.holder): "run", "apply", "drop", "busy", None."""
        return lock.holder(self.lock_path)

    def is_running(self) -> bool:
        """True while an agent runs in the session (a run holds its lock)."""
        return self.holder() == "run"


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


def owner_elsewhere(worktree: Worktree, name: str) -> str | None:
    """The path of the other worktree of this repository whose store holds session `name`,
    or None. Linked worktrees share refs (agent/S, refs/agent-base/S), each has its own
    store: a session's refs belong to the worktree whose store holds the session."""
    out = proc.git("worktree", "list", "--porcelain", "-z", cwd=worktree.root, check=False)
    for rec in out.split(b"\0"):
        if not rec.startswith(b"worktree "):
            continue
        path = rec[len(b"worktree "):].decode(errors="surrogateescape")
        roots = {Path(path)}  # its store is found by its path, whether it is there now or not
        with contextlib.suppress(GitAgentError):  # (moved, unplugged, locked: it owns its
            roots.add(find_worktree(Path(path)).root)  # sessions until `git worktree prune`)
        if any(r != worktree.root and session_dir(store_of(r), name).is_dir() for r in roots):
            return path
    return None


def elsewhere_message(name: str, path: str) -> str:
    return (f"session {name!r} is a session of the worktree {quote_path(os.fsencode(path))} "
            f"(agent/{name} and refs/agent-base/{name} are shared, its files are there): "
            "pick another name with -s NAME, or run git agent in that worktree")


def create(worktree: Worktree, session: Session, repo_id: str | None = None) -> None:
    """Make the session folder (idempotent); refuse names that clash as branches, and a name
    another worktree's session has (its refs are that worktree's). `repo_id`: the
    repository's id (identity.py), recorded in a new session's meta."""
    store = worktree_store(worktree)
    with repository_lock(worktree):  # the check and the folder: one step for every worktree
        _create(worktree, session, store, repo_id)


def _create(worktree: Worktree, session: Session, store: Path, repo_id: str | None) -> None:
    where = owner_elsewhere(worktree, session.name)  # even with a folder here: a lost race's
    if where is not None:
        raise UsageError(elsewhere_message(session.name, where))
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
        meta.write(session.meta_path, meta.Meta(name=session.name, worktree=str(worktree.root),
                                                created=time.time(), repo_id=repo_id))


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
