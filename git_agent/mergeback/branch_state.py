"""Where agent/<session> stands: the base a branch known by its refs alone names, and whether
the branch is as git agent last left it (a capture, or an apply's rewrite)."""

from __future__ import annotations

from git_agent import proc, session
from git_agent.repo import Worktree


def trailer_base(worktree: Worktree, head: str) -> str | None:
    """The base the Agent-Base trailer of head (or of the last capture below it) names, when
    this repository has that commit: for a branch fetched without refs/agent-base/S."""
    out = proc.git("log", "-1", "--format=%(trailers:key=Agent-Base,valueonly)",
                   "--grep=^Agent-Base: ", head, cwd=worktree.root, check=False)
    named = out.decode().strip()
    return worktree.resolve(named) if named else None


def no_base(s: session.Session, *, running: bool) -> str:
    """Why a session with no base cannot be reviewed or applied, and what to do."""
    if running:
        return (f"session {s.name!r} is in its first run and its base is recorded when that "
                "ends; review or apply it then")
    if not s.exists():
        return (f"session {s.name!r} is known only by its branch {s.branch_name}, and its base "
                f"is missing ({s.base_ref}; no Agent-Base trailer names a commit here): fetch "
                f"that ref too, or `git agent drop {s.name}`")
    return (f"session {s.name!r} has no base ({s.base_ref} is missing); "
            f"`git agent drop {s.name}` and run again")


def captured_base(worktree: Worktree, head: str) -> str | None:
    out = proc.git("log", "-1", "--format=%(trailers:key=Agent-Base,valueonly)", head,
                   cwd=worktree.root, check=False)
    return out.decode().strip() or None


def cut_short(worktree: Worktree, s: session.Session, base: str | None, head: str) -> bool:
    """Was a run killed before its capture? Its base ref is then ahead of the branch."""
    return not recorded(s, base, head) and captured_base(worktree, head) != base


def recorded(s: session.Session, base: str | None, head: str) -> bool:
    """Is head the branch as git agent left it for this base (a capture, or an apply that
    left agent/S at its base or at one of the agent's commits)? Then no run was cut short."""
    if head == base:
        return True
    m = s.read_meta()
    return m.capture_tip == head and m.capture_base == base


def checked_out_in(worktree: Worktree, ref: str) -> list[str]:
    """The worktrees of this repository (this one too) that have ref checked out, as `git
    worktree list` names them."""
    out = proc.git("worktree", "list", "--porcelain", "-z", cwd=worktree.root, check=False)
    where: list[str] = []
    path = ""
    for line in out.split(b"\0"):
        if line.startswith(b"worktree "):
            path = line[len(b"worktree "):].decode("utf-8", "replace")
        elif line == b"branch " + ref.encode():
            where.append(path)
    return where
