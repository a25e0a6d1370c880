"""`apply -p` onto a file you changed too: of the hunks taken, each that no longer applies onto
your file (you changed its lines) stays in the session, and the others are applied."""

from __future__ import annotations

import dataclasses

from git_agent import ui
from git_agent.mergeback import engine
from git_agent.mergeback import hunks as H
from git_agent.mergeback.hunk_prompt import Partial, Selection
from git_agent.mergeback.view import View, repo_of


def refit(view: View, p: engine.ApplyPlan, sel: Selection) -> int:
    """For each conflicting file some of whose hunks were taken: keep taking, one by one, the
    hunks that merge cleanly onto your file; the plan's action and the selection are changed
    to that, and it is said which stay. A file none of whose hunks fit is left as it is.
    Returns how many files keep hunks that were taken."""
    refitted = 0
    repo = repo_of(view.worktree)
    labels = ("worktree", "base", view.session.branch_name)
    for i, a in enumerate(p.actions):
        got = sel.blocks.get(a.change.path)
        if not a.conflict or got is None or a.before is None or not a.before.is_file:
            continue
        base, taken, kept, _ = got
        fits: list[H.Block] = []
        for b in taken:
            _, n = engine.merge_text(base, a.before.data, H.compose(base, [*fits, b]),
                                     labels=labels, cwd=view.worktree.root)
            if n == 0:
                fits.append(b)
        if not fits:
            continue
        left = [b for b in taken if b not in fits]
        data = H.compose(base, fits)
        change = dataclasses.replace(a.change, new_oid=str(repo.create_blob(data)))
        again = engine.plan(view, [change], merge=False).actions[0]
        if again.conflict:
            continue  # your file changed meanwhile: left whole
        p.actions[i] = again
        sel.whole = [c for c in sel.whole if c.path != change.path]
        sel.partial = [q for q in sel.partial if q.change.path != change.path]
        stay = [*kept, *left]
        sel.partial.append(Partial(change, data, H.compose(base, stay),
                                   H.compose(base, [*fits, *stay])))
        ui.echo(f"{change.shown}: {len(left)} of the {len(taken)} hunks you took no longer "
                f"appl{'ies' if len(left) == 1 else 'y'} onto your file (you changed those "
                "lines); left in the session")
        refitted += 1
    return refitted
