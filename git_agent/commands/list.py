"""`git agent list`: the sessions of this worktree (or all of the repository's), their state,
size and last run."""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from pathlib import Path
from typing import Any

from git_agent import proc, session, ui
from git_agent.errors import GitAgentError
from git_agent.mergeback.store_walk import disk_usage
from git_agent.mergeback.view import files_changed
from git_agent.repo import Worktree, find_worktree
from git_agent.session import ahead, identity


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{n}B"


_STATE = {"run": "running", "apply": "applying", "drop": "dropping", "busy": "busy"}


def describe(worktree: Worktree, s: session.Session, repo_id: str | None = None,
             ) -> dict[str, Any]:
    """One session as list shows it; `repo_id`: the repository's id (identity.current)."""
    stale = identity.is_stale(worktree, s, repo_id)
    # a stale session's refs would be this repository's, not its own
    base, head = (None, None) if stale else (worktree.resolve(s.base_ref),
                                             worktree.resolve(s.branch))
    busy = s.holder()
    meta = s.read_meta()
    return {
        "name": s.name,
        "stale": stale,  # made for another repository that was at this path: drop it
        "refs_only": not s.dir.is_dir(),  # no folder: known by agent/S, refs/agent-base/S
        "branch": s.branch_name,
        "running": busy == "run",
        "busy": busy,  # what holds the session: "run", "apply", "drop"; None: nothing
        "base": base,
        "head": head,
        "files": files_changed(worktree, base, head),
        "size": disk_usage(s.dir),
        "last_run": (last.as_dict() if (last := meta.last_run) else None),
        "remote": meta.remote,  # the remote its last run ran on (run --on); None: here
        # it goes on there without a connection (--detach, a lost one), as last heard
        "remote_running": bool(meta.remote_running),
        # a run ended after the last capture: the branch lacks what it left (ahead.py)
        "uncaptured": not stale and busy != "run" and ahead.uncaptured(s),
    }


def _last_run_text(run: dict[str, Any] | None) -> str:
    if not run:
        return "never run"
    when = run.get("end") or run.get("start")
    parts = [time.strftime("%Y-%m-%d %H:%M", time.localtime(when)) if when else "?"]
    if "command" in run:
        # quoted for a terminal as git quotes paths: an argument cannot move the cursor
        cmd = " ".join(shlex.quote(a) if ui.quote_path(a) == a else ui.quote_path(a)
                       for a in run["command"])
        parts.append(cmd if len(cmd) <= 40 else cmd[:37] + "...")
    if "exit_status" in run:
        parts.append(f"exit {run['exit_status']}")
    return ", ".join(parts)


def _last_run_cell(r: dict[str, Any]) -> str:
    if r["refs_only"]:
        return "- (no session folder: known by its refs)"
    if r["running"]:
        return ("running now (first run)" if not r["last_run"]
                else "running now; before: " + _last_run_text(r["last_run"]))
    return _last_run_text(r["last_run"])


def other_worktrees(worktree: Worktree) -> list[Worktree]:
    """The repository's other worktrees that exist (`git worktree list`), main one first."""
    out = proc.git("worktree", "list", "--porcelain", "-z", cwd=worktree.root, check=False)
    found = []
    for rec in out.split(b"\0"):
        if rec.startswith(b"worktree "):
            path = rec[len(b"worktree "):].decode(errors="surrogateescape")
            if path != str(worktree.root):
                # gone, bare, or not ours: it has no sessions to show
                with contextlib.suppress(GitAgentError):
                    found.append(find_worktree(Path(path)))
    return found


def refs_only(worktree: Worktree, others: list[Worktree]) -> list[session.Session]:
    """Sessions known only by their refs (agent/S or refs/agent-base/S, and no folder in any
    worktree's store: a store lost or moved, a branch fetched from elsewhere)."""
    out = proc.git("for-each-ref", "--format=%(refname)", session.BRANCH_PREFIX,
                   session.BASE_PREFIX, cwd=worktree.root, check=False)
    names = {r.removeprefix(session.BRANCH_PREFIX).removeprefix(session.BASE_PREFIX)
             for r in out.decode(errors="surrogateescape").split()}
    known = {s.name for wt in [worktree, *others] for s in session.list_sessions(wt)}
    found = []
    for n in sorted(names - known):
        with contextlib.suppress(GitAgentError):
            found.append(session.get(worktree, n))
    return found


def main(*, json_out: bool, all_worktrees: bool = False) -> int:
    worktree = find_worktree()
    others = other_worktrees(worktree)
    trees = [worktree, *others] if all_worktrees else [worktree]
    repo_id = identity.current(worktree)  # one repository: its worktrees share the id
    rows = [{**describe(wt, s, repo_id), "worktree": str(wt.root)}
            for wt in trees for s in session.list_sessions(wt)]
    rows += [{**describe(worktree, s, repo_id), "worktree": str(worktree.root)}
             for s in refs_only(worktree, others)]
    if json_out:
        ui.write_stdout((json.dumps(rows, indent=2) + "\n").encode())
        return 0
    elsewhere = 0 if all_worktrees else sum(len(session.list_sessions(wt)) for wt in others)
    if not rows:
        where = "this repository's worktrees" if all_worktrees else "this worktree"
        ui.say(f"no sessions in {where} (start one with `git agent run`)")
        if elsewhere:
            ui.say(f"{elsewhere} in other worktrees of this repository: git agent list --all")
        return 0
    head = ("SESSION", "BRANCH", "STATE", "WHERE", "FILES", "SIZE", "LAST RUN")
    table = [("WORKTREE", *head) if all_worktrees else head]
    for r in rows:
        state = ("stale" if r["stale"] else "refs only" if r["refs_only"]
                 else _STATE.get(r["busy"] or "", "running" if r["remote_running"] else "idle"))
        if r["uncaptured"]:
            state += ", not captured"
        where = "local" if not r["remote"] else "remote " + ui.quote_path(r["remote"])
        # names of fetched branches are any bytes git allows: quoted as paths are
        cells = (ui.quote_path(r["name"]), ui.quote_path(r["branch"]), state, where,
                 "-" if r["files"] is None else str(r["files"]), human_size(r["size"]),
                 _last_run_cell(r))
        table.append((ui.quote_path(r["worktree"]), *cells) if all_worktrees else cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
             for row in table]
    ui.write_stdout(("\n".join(lines) + "\n").encode())
    for r in rows:
        s = session.Session(r["name"], Path())
        if r["stale"]:
            ui.say(identity.stale_message(s))
        elif r["running"]:
            ui.say(f"session {s.name!r} is running: FILES counts what was captured last; "
                   f"`git agent capture {s.name}` brings {s.branch_name} up to date")
        elif r["uncaptured"]:
            ui.say(ahead.hint(s))
    if elsewhere:
        ui.say(f"{elsewhere} more in other worktrees of this repository: git agent list --all")
    return 0
