"""`git agent review`: the summary of a session's changes with their risks, then the diff."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from git_agent import proc, ui
from git_agent.mergeback.view import (
    FileChange,
    NothingCaptured,
    View,
    changes,
    diff_argv,
    find_session,
    open_view,
    pathspecs,
)
from git_agent.repo import find_worktree
from git_agent.sandbox import network
from git_agent.session import ahead


def to_json(view: View, files: Sequence[FileChange]) -> dict[str, Any]:
    return {
        "session": view.session.name,
        "branch": view.session.branch_name,
        "base": view.base,
        "head": view.head,
        "files": [c.to_json() for c in files],
        "net": network.record(view.session.dir),
    }


def _numstat(view: View, specs: Sequence[str]) -> tuple[int, int]:
    out = proc.git("diff-tree", "-r", "-z", "--no-renames", "--numstat", view.base, view.head,
                   "--", *specs, cwd=view.worktree.root)
    plus = minus = 0
    for rec in out.split(b"\0"):
        parts = rec.split(b"\t")
        if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
            plus, minus = plus + int(parts[0]), minus + int(parts[1])
    return plus, minus


def summary(view: View, files: Sequence[FileChange], specs: Sequence[str], *,
            color: bool) -> str:
    """Counts, then every risk with its one-line reason."""
    n = {s: sum(c.status == s for c in files) for s in ("added", "modified", "deleted")}
    plus, minus = _numstat(view, specs)
    lines = [
        ui.paint(f"session {view.session.name} ({view.session.branch_name}"
                 f", base {view.base[:12]}, head {view.head[:12]})", ui.BOLD, color=color),
        f"{len(files)} file{'s' if len(files) != 1 else ''} changed: {n['added']} added, "
        f"{n['modified']} modified, {n['deleted']} deleted; "
        f"{ui.paint(f'+{plus}', ui.GREEN, color=color)} "
        f"{ui.paint(f'-{minus}', ui.RED, color=color)} lines",
    ]
    risky = sorted((c for c in files if c.risks), key=lambda c: not c.foreign)  # those first
    if risky:
        lines.append(ui.paint(f"{len(risky)} risky file{'s' if len(risky) != 1 else ''} "
                              "(can run code or change behaviour outside the sandbox):",
                              ui.YELLOW, color=color))
        for c in risky:
            for r in c.risks:
                lines.append(f"  {ui.paint('!', ui.RED, color=color)} {c.shown}: {r}")
    else:
        lines.append("no risky files")
    lines += network.review_lines(view.session.dir)  # "network: reached 3 hosts; denied ..."
    return "\n".join(lines) + "\n\n"


def render(view: View, files: Sequence[FileChange], specs: Sequence[str], *, color: bool,
           stat: bool) -> bytes:
    text = summary(view, files, specs, color=color).encode("utf-8", "surrogateescape")
    return text + proc.run(diff_argv(view, specs, color=color, stat=stat),
                           cwd=view.worktree.root, env=proc.no_git_env()).stdout


def main(*, session_name: str | None, stat: bool, json_out: bool, paths: Sequence[str],
         net: bool = False) -> int:
    worktree = find_worktree()
    if net:  # the network record: one line per connection, whether files changed or not
        s = find_session(worktree, session_name)
        lines = network.review_lines(s.dir, full=True)
        if not lines:
            ui.say(f"session {s.name!r} has no network record (its runs used --net host or "
                   "none, where nothing goes through git agent's proxy)")
            return 0
        ui.write_stdout(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
        return 0
    try:
        view = open_view(worktree, session_name)
    except NothingCaptured as e:
        ui.say(str(e))
        lines = network.review_lines(find_session(worktree, session_name).dir)
        if lines:  # a session that only reached out is not one to overlook
            ui.say(f"{lines[0]} (git agent review --net lists it)")
        return 0
    files = changes(view, paths=paths)
    behind = (ahead.hint(view.session)
              if not view.session.is_running() and ahead.uncaptured(view.session) else None)
    if json_out:
        out = {**to_json(view, files), "uncaptured": behind is not None}
        ui.write_stdout((json.dumps(out, indent=2) + "\n").encode())
        return 0
    if behind is not None:  # said first: what follows is the branch, not the upper dir
        ui.say(behind)
    if not files:
        ui.say(f"session {view.session.name!r} has no changes"
               + (" captured" if behind is not None else ""))
        for line in network.review_lines(view.session.dir):
            ui.say(f"{line} (git agent review --net lists it)")
        return 0
    color = ui.use_color(cwd=worktree.root)
    specs = pathspecs(worktree, paths)
    ui.page(render(view, files, specs, color=color, stat=stat), cwd=worktree.root)
    return 0
