"""`git agent capture [SESSION]`: bring agent/SESSION up to date with the session's upper dir
now (after `run --no-capture`, after an interrupted run, or while the agent still runs)."""

from __future__ import annotations

from git_agent import ui
from git_agent.errors import GitAgentError
from git_agent.mergeback.view import assess_ahead, find_session
from git_agent.repo import find_worktree


def main(*, session_name: str | None) -> int:
    from git_agent.capture import commit as capture

    worktree = find_worktree()
    s = find_session(worktree, session_name)
    holder = s.holder()
    if holder in ("apply", "drop"):
        raise GitAgentError(f"session {s.name!r} is being {holder}ed by another git agent; "
                            "capture it when that is done")
    if not s.dir.is_dir():
        raise GitAgentError(f"session {s.name!r} has no folder here (known only by its "
                            f"refs): nothing to capture; {s.branch_name} is all there is")
    base = worktree.resolve(s.base_ref)
    if base is None:
        raise GitAgentError(
            f"session {s.name!r} is in its first run and its base is recorded when that ends; "
            "capture it then" if holder == "run" else
            f"session {s.name!r} has no base ({s.base_ref} is missing); "
            f"`git agent drop {s.name}` and run again")
    if not s.upper.is_dir():
        raise GitAgentError(f"session {s.name!r} has no upper dir (its changes are gone); "
                            f"agent/{s.name} keeps its last capture")
    reason = "capture while the agent runs" if holder == "run" else "git agent capture"
    result = capture.capture(worktree=worktree, session=s, base=base, reason=reason)
    for w in result.warnings:
        ui.say(f"warning: {w}")
    ui.say(result.summary)
    if result.commit is not None:  # the next review or apply reads it, once
        assess_ahead(worktree, s)
    return 0
