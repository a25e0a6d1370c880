"""What apply would find at each path, said at the -i / -p prompt: clean, you changed it too
(merges cleanly), already there, or conflicts (and what answering y then writes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from git_agent.errors import GitAgentError
from git_agent.gittree import GITLINK
from git_agent.mergeback import engine
from git_agent.mergeback.view import FileChange, View, repo_of
from git_agent.mergeback.worktree_files import Entry

CLEAN, BOTH, THERE, CONFLICT = "clean", "both", "there", "conflict"


@dataclass(frozen=True)
class Mark:
    kind: str
    text: str
    why: str = ""  # a conflict's reason alone

    @property
    def conflict(self) -> bool:
        return self.kind == CONFLICT


def of_action(a: engine.Action, base: Entry | None) -> Mark:
    if a.conflict:
        if a.markers:
            then = "y writes it with conflict markers (base section included), n leaves it"
        elif not a.noop:
            then = "y writes the agent's file over your deletion, n leaves it"
        else:
            then = "apply keeps yours; it stays"
        return Mark(CONFLICT, f"conflicts: {a.conflict}; {then} in the session", a.conflict)
    if a.noop:
        return Mark(THERE, "already in your worktree")
    if a.before == base:
        return Mark(CLEAN, "clean")
    return Mark(BOTH, "you changed it too (merges cleanly)")


def marks(view: View, picked: Sequence[FileChange]) -> dict[bytes, Mark]:
    """The mark of each path of picked (none for those apply refuses anyway)."""
    repo = repo_of(view.worktree)
    todo = [c for c in picked if GITLINK not in (c.old_mode, c.new_mode)]
    try:
        actions = engine.plan(view, todo, merge=True).actions
    except GitAgentError:  # one path apply refuses: mark the others one by one
        actions = []
        for c in todo:
            try:
                actions += engine.plan(view, [c], merge=True).actions
            except GitAgentError:
                continue
    return {a.change.path: of_action(a, engine.side(repo, a.change.old_oid, a.change.old_mode))
            for a in actions}
