"""The repository's identity: a random id written once into the repository (refs/agent-id) and
recorded in each session's meta, so that a session never outlives its repository."""

from __future__ import annotations

import os

from git_agent import proc
from git_agent.errors import GitAgentError
from git_agent.repo import Worktree
from git_agent.session.store import Session

# A ref git agent owns, pointing at a blob of random bytes: its object id is the repository's
# id. git keeps it with the repository (copies of the whole .git keep it), and no clone, fetch
# or default push carries it, so a repository made anew at the same path never has it.
REF = "refs/agent-id"


class StaleSession(GitAgentError):
    """The session was made for another repository that was at this path."""


def current(worktree: Worktree) -> str | None:
    """The repository's id, or None when git agent never recorded one here."""
    out = proc.git("rev-parse", "-q", "--verify", "--end-of-options", REF, cwd=worktree.root,
                   check=False)
    return out.decode().strip() or None


def ensure(worktree: Worktree) -> str:
    """The repository's id, written first when it has none (only refs/agent-id and one blob:
    the user's branches, index, HEAD and config are not touched)."""
    have = current(worktree)
    if have is not None:
        return have
    data = f"git agent repository id {os.urandom(16).hex()}\n".encode()
    blob = proc.git("hash-object", "-w", "--stdin", input=data, cwd=worktree.root)
    # "" as the old value: created only if absent (another run may have just made it)
    proc.git("update-ref", "-m", "git agent: repository id", REF, blob.decode().strip(), "",
             cwd=worktree.root, check=False)
    have = current(worktree)
    if have is None:
        raise GitAgentError(f"cannot record the repository's id ({REF}) in {worktree.root}")
    return have


def is_stale(worktree: Worktree, s: Session, repo_id: str | None = None) -> bool:
    """Was the session made for another repository? `repo_id`: current(), when known.

    A session from before ids were recorded belongs here when this repository has its base
    ref (the first capture wrote it), which a repository made anew at the same path has not."""
    if not s.exists():
        return False
    recorded = s.read_meta().repo_id
    if recorded is None:
        return worktree.resolve(s.base_ref) is None
    return recorded != (repo_id if repo_id is not None else current(worktree))


def stale_message(s: Session) -> str:
    return (f"session {s.name!r} is stale: it was made for another repository that was at this "
            f"path; remove it with `git agent drop --force {s.name}`")


def check(worktree: Worktree, s: Session) -> None:
    """Refuse a stale session (never reused: its overlay, .git and home are another's)."""
    if is_stale(worktree, s):
        raise StaleSession(stale_message(s))
