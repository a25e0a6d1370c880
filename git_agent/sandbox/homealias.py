"""HOME at another path: a remote run shows the agent home at the caller's own $HOME path (the
local machine's, issue #17) as a symlink to where it is mounted, when nothing of the sandbox is
at, above or below that path; else HOME stays the real one (docs/remote.md, "HOME")."""

from __future__ import annotations

import os
from pathlib import Path

from git_agent.repo import within
from git_agent.sandbox.mounts import MountPlan, Symlink


def usable(alias: Path, home: Path, plan: MountPlan) -> bool:
    """Can alias stand for home inside? An absolute, normal path other than / and home, that no
    mount of the plan is at, above or below (a system dir, /tmp, the worktree...)."""
    if not alias.is_absolute() or alias == Path("/") or alias == home or \
            os.path.normpath(alias) != str(alias) or "\0" in str(alias):
        return False
    if within(home, alias) or within(alias, home):
        return False
    return not any(within(m.dest, alias) or within(alias, m.dest)
                   for m in plan.mounts if hasattr(m, "dest"))


def apply(plan: MountPlan, *, home: Path, alias: Path | None) -> tuple[MountPlan, bool]:
    """The plan with alias a symlink to home and HOME=alias, when usable; and whether it is."""
    if alias is None or not usable(alias, home, plan):
        return plan, False
    return plan.but(mounts=[*plan.mounts, Symlink(str(home), alias)],
                    env={**plan.env, "HOME": str(alias)}), True
