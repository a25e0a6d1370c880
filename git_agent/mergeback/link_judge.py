"""The links of exactly what one apply writes, judged again once that set is known (after
-- PATHS, -i, -p and the deletions a pick needs): link_walk resolves each through the entries
written and, for every other path, your worktree as it is now. A judgement made over all the
session's changes would read a path this apply leaves as yours as the branch has it."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

from git_agent import gittree
from git_agent.mergeback import link_walk
from git_agent.mergeback.view import FileChange, View, blob, repo_of

WALKED = (link_walk.LEADS_OUT, link_walk.LOOPS, link_walk.INTO_GIT, link_walk.UPWARD)


def judged(view: View, to_apply: Sequence[FileChange]) -> list[FileChange]:
    """to_apply with each link's walked risk (WALKED) replaced by one judged through what
    your worktree will be once exactly to_apply is written; a link's own text risk kept."""
    if not any(c.new_mode == gittree.LINK for c in to_apply):
        return list(to_apply)
    repo = repo_of(view.worktree)
    writes = {c.path: link_walk.written(None if c.new_oid is None else c.new_mode,
                                        functools.partial(blob, repo, c.new_oid, c.new_mode))
              for c in to_apply}
    found = link_walk.link_risks_beneath(view.worktree.root, writes)
    out = []
    for c in to_apply:
        kept = tuple(r for r in c.risks if not r.startswith(WALKED))
        if c.path in found and not any(r.startswith("symlink") for r in kept):
            kept = (*kept, found[c.path])
        out.append(c if kept == c.risks else dataclasses.replace(c, risks=kept))
    return out
