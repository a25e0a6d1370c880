"""`git agent list` and `git agent drop`: the sessions of this worktree, and removing one."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from git_agent import proc, session, ui
from git_agent.errors import GitAgentError, SessionBusy
from git_agent.repo import Worktree, find_worktree


def _ref(worktree: Worktree, ref: str) -> str | None:
    out = proc.git("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", cwd=worktree.root,
                   check=False)
    return out.decode().strip() or None


def _files_changed(worktree: Worktree, base: str | None, head: str | None) -> int | None:
    if base is None or head is None:
        return None
    out = proc.git("diff-tree", "-r", "-z", "--no-renames", "--name-only", base, head,
                   cwd=worktree.root, check=False)
    return sum(1 for p in out.split(b"\0") if p)


def disk_usage(path: Path) -> int:
    """Bytes used below path (allocated blocks, never following links; unreadable dirs skipped)."""
    total = 0
    stack = [os.fspath(path)]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
    return total


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{n}B"


_STATE = {"run": "running", "apply": "applying", "drop": "dropping", "busy": "busy"}


def describe(worktree: Worktree, s: session.Session) -> dict[str, Any]:
    base, head = _ref(worktree, s.base_ref), _ref(worktree, s.branch)
    busy = s.holder()
    return {
        "name": s.name,
        "branch": s.branch.removeprefix("refs/heads/"),
        "running": busy == "run",
        "busy": busy,  # what holds the session: "run", "apply", "drop"; None: nothing
        "base": base,
        "head": head,
        "files": _files_changed(worktree, base, head),
        "size": disk_usage(s.dir),
        "last_run": (last.as_dict() if (last := s.read_meta().last_run) else None),
    }


def _last_run_text(run: dict[str, Any] | None) -> str:
    if not run:
        return "never run"
    when = run.get("end") or run.get("start")
    parts = [time.strftime("%Y-%m-%d %H:%M", time.localtime(when)) if when else "?"]
    if "command" in run:
        cmd = shlex.join(run["command"])
        parts.append(cmd if len(cmd) <= 40 else cmd[:37] + "...")
    if "exit_status" in run:
        parts.append(f"exit {run['exit_status']}")
    return ", ".join(parts)


def list_main(*, json_out: bool) -> int:
    worktree = find_worktree()
    rows = [describe(worktree, s) for s in session.list_sessions(worktree)]
    if json_out:
        ui.write_stdout((json.dumps(rows, indent=2) + "\n").encode())
        return 0
    if not rows:
        ui.say("no sessions in this worktree (start one with `git agent run`)")
        return 0
    table = [("SESSION", "BRANCH", "STATE", "FILES", "SIZE", "LAST RUN")]
    for r in rows:
        table.append((r["name"], r["branch"], _STATE.get(r["busy"] or "", "idle"),
                      "-" if r["files"] is None else str(r["files"]), human_size(r["size"]),
                      _last_run_text(r["last_run"])))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
             for row in table]
    ui.write_stdout(("\n".join(lines) + "\n").encode())
    return 0


@contextlib.contextmanager
def _locked(s: session.Session) -> Iterator[None]:
    """Hold the session's lock while removing it, so no run starts meanwhile."""
    if not s.dir.is_dir():
        yield
        return
    with session.Lock(s, "drop"):
        yield


def drop_main(*, session_name: str, force: bool) -> int:
    worktree = find_worktree()
    s = session.get(worktree, session_name)
    base, head = _ref(worktree, s.base_ref), _ref(worktree, s.branch)
    if not s.dir.exists() and base is None and head is None:
        raise GitAgentError(f"no session {s.name!r} in this worktree")
    doing = s.holder()
    if doing == "run":
        raise SessionBusy(f"session {s.name!r} is running; end it first, then drop it")
    if doing is not None:  # said before asking; the lock below is the real guard
        raise SessionBusy(session.busy_message(s, doing), doing=doing)
    if worktree.head_ref() == s.branch:
        raise GitAgentError(f"{s.branch.removeprefix('refs/heads/')} is checked out here; "
                            "switch to another branch first")
    if not force:
        if not sys.stdin.isatty():
            raise GitAgentError(f"not dropping session {s.name!r} without a terminal to ask "
                                "on; pass --force")
        n = _files_changed(worktree, base, head)
        what = f"{n} changed file{'s' if n != 1 else ''}" if n is not None else "its overlay"
        answer = ui.ask(f"drop session {s.name!r} ({what}; branch "
                        f"{s.branch.removeprefix('refs/heads/')})? [y/N] ")
        if answer.lower() not in ("y", "yes"):
            ui.echo("not dropped")
            return 1
    with _locked(s):
        session.remove(s)
        for ref, old in ((s.branch, head), (s.base_ref, base)):
            if old is not None:
                proc.git("update-ref", "-m", f"git agent: drop {s.name}", "-d", ref, old,
                         cwd=worktree.root)
    ui.say(f"dropped session {s.name!r}")
    return 0
