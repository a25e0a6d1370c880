"""The base: the state the agent starts from, as a commit (HEAD, or HEAD + uncommitted work).

Runs in a background thread while the sandbox starts: only subprocesses, no shared state.
The user's index, HEAD and worktree are never written: `git add -A` runs against a temporary
copy of the index (so git's stat cache is reused and only changed files are hashed).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from git_agent import proc
from git_agent.errors import GitAgentError
from git_agent.repo import Worktree
from git_agent.session import Session

ZERO_OID = "0" * 40
FALLBACK_NAME = "git-agent"
FALLBACK_EMAIL = "git-agent@localhost"


@dataclass(frozen=True)
class Base:
    oid: str  # the commit the agent starts from
    head: str | None  # HEAD when the snapshot was taken (None: unborn)
    clean: bool  # True when oid == head: nothing uncommitted



def _identity_env(worktree: Worktree) -> dict[str, str]:
    """A fixed identity when the user has none (commit-tree would fail without one)."""
    p = proc.run(["git", "var", "GIT_COMMITTER_IDENT"], cwd=worktree.root, check=False)
    if p.returncode == 0:
        return {}
    return {"GIT_AUTHOR_NAME": FALLBACK_NAME, "GIT_AUTHOR_EMAIL": FALLBACK_EMAIL,
            "GIT_COMMITTER_NAME": FALLBACK_NAME, "GIT_COMMITTER_EMAIL": FALLBACK_EMAIL}


def snapshot(*, worktree: Worktree, scratch: Path | None = None) -> Base:
    """Record the worktree as a commit: HEAD when clean, else a commit on top of HEAD (none
    when unborn) holding tracked changes and untracked, non-ignored files exactly.

    The temporary index lives in `scratch` (the session folder) when given: a run that exits
    without waiting for the snapshot leaves it there, and the next snapshot removes it."""
    head = worktree.head_oid()
    if scratch is not None:
        for old in scratch.glob("base-index-*"):
            shutil.rmtree(old, ignore_errors=True)
    # not TemporaryDirectory: its clean-up at interpreter exit would race with a git still
    # writing there when run exits without waiting for the snapshot (the next one cleans up)
    tmp = tempfile.mkdtemp(prefix="base-index-", dir=scratch)
    try:
        index = os.path.join(tmp, "index")
        real = worktree.git_dir / "index"
        try:
            shutil.copy2(real, index)  # keep its mtime: git's racy-clean check depends on it
        except FileNotFoundError:
            if head is not None:
                # no index but a HEAD: start from HEAD's tree (read-tree), then add -A
                proc.git("read-tree", head, cwd=worktree.root, env={"GIT_INDEX_FILE": index})
        env = {"GIT_INDEX_FILE": index}
        try:
            proc.git("add", "-A", "--", ".", cwd=worktree.root, env=env)
        except proc.CalledProcessError as e:
            raise GitAgentError(
                f"cannot snapshot the worktree ({e}); fix the file git complains about, "
                "or commit/stash your work first"
            ) from e
        tree = proc.git("write-tree", cwd=worktree.root, env=env).decode().strip()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if head is not None:
        head_tree = proc.git("rev-parse", f"{head}^{{tree}}", cwd=worktree.root).decode().strip()
        if head_tree == tree:
            return Base(oid=head, head=head, clean=True)
    parents = ["-p", head] if head else []
    # dated like HEAD: the same uncommitted state gives the same base commit, run after run
    date = (proc.git("show", "-s", "--format=%cd", "--date=raw", head, cwd=worktree.root)
            .decode().strip() if head else "@0 +0000")
    env = {**_identity_env(worktree), "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    msg = (f"git agent: base snapshot of uncommitted work on {head[:12]}\n" if head
           else "git agent: base snapshot (unborn branch)\n")
    oid = proc.git("commit-tree", tree, *parents, cwd=worktree.root, input=msg.encode(),
                   env=env).decode().strip()
    return Base(oid=oid, head=head, clean=False)


def keep(*, worktree: Worktree, session: Session, base: Base, old: str | None = None) -> None:
    """Point the session's base ref at base (compare-and-swap against old, default: its
    current value), so the snapshot commit survives gc and review can find it."""
    if old is None:
        got = proc.git("rev-parse", "-q", "--verify", session.base_ref, cwd=worktree.root,
                       check=False).decode().strip()
        old = got or ZERO_OID
    try:
        proc.git("update-ref", "-m", f"git agent: base of {session.name}", session.base_ref,
                 base.oid, old, cwd=worktree.root)
    except proc.CalledProcessError as e:
        raise GitAgentError(
            f"{session.base_ref} changed while it was being set ({e}); is another git agent "
            "starting this session?"
        ) from e


def read(*, worktree: Worktree, session: Session) -> str | None:
    """The session's recorded base commit, or None."""
    got = proc.git("rev-parse", "-q", "--verify", f"{session.base_ref}^{{commit}}",
                   cwd=worktree.root, check=False).decode().strip()
    return got or None
