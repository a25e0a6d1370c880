"""`git agent review`: the summary of a session's changes with their risks, then the diff."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from git_agent import proc, ui
from git_agent.mergeback import assessed, diffstat
from git_agent.mergeback.view import (
    FileChange,
    NothingCaptured,
    View,
    changes,
    diff_argv,
    find_session,
    open_view,
    pathspecs,
    stat_usable,
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


def _from_stat(out: bytes) -> tuple[int, int]:
    """The lines added and removed, from the last line of git's --stat (colours left out)."""
    last = re.sub(rb"\x1b\[[0-9;]*m", b"", out.rstrip(b"\n").rpartition(b"\n")[2])
    plus = re.search(rb"(\d+) insertions?\(\+\)", last)
    minus = re.search(rb"(\d+) deletions?\(-\)", last)
    return int(plus[1]) if plus else 0, int(minus[1]) if minus else 0


def summary(view: View, files: Sequence[FileChange], specs: Sequence[str], *,
            color: bool, counts: tuple[int, int] | None = None) -> str:
    """Counts, then every risk with its one-line reason."""
    n = {s: sum(c.status == s for c in files) for s in ("added", "modified", "deleted")}
    plus, minus = counts if counts is not None else _numstat(view, specs)
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
           stat: bool, diff: bytes | None = None) -> bytes:
    """diff: the output of diff_argv, when it was started already (see _diff_meanwhile)."""
    if diff is None:
        diff = _diff(view, specs, color=color, stat=stat)
    counts = _from_stat(diff) if stat else None  # git counted them already
    text = summary(view, files, specs, color=color, counts=counts)
    return text.encode("utf-8", "surrogateescape") + diff


def _diff(view: View, specs: Sequence[str], *, color: bool, stat: bool) -> bytes:
    """git's diff (or --stat) shown as apply -p shows it: git's plain run with each line made
    visible (ui.shown_line), in git's colours (its coloured run, in a thread meanwhile) where
    the line held nothing to escape, else in the colour git opened it with."""
    def run(c: bool) -> bytes:
        return proc.run(diff_argv(view, specs, color=c, stat=stat), cwd=view.worktree.root,
                        env=proc.no_git_env()).stdout
    if not color:
        return ui.shown_diff(run(False), None)
    got: list[bytes] = []
    err: list[BaseException] = []

    def coloured() -> None:
        try:
            got.append(run(True))
        except BaseException as e:  # noqa: BLE001 - raised again below
            err.append(e)

    t = threading.Thread(target=coloured, name="diff-colour", daemon=True)
    t.start()
    plain = run(False)
    t.join()
    if err:
        raise err[0]
    return ui.shown_diff(plain, got[0])


def _stored_counts(view: View, paths: Sequence[str]) -> list[tuple[int, int, bool]] | None:
    """The line counts kept with the session's assessment when they are for these commits
    and this config, and the stat is of every file at a width known without git."""
    if paths or diffstat.width_from(os.environ) is None:
        return None
    kept = assessed.load(view.session.dir, assessed.key(view.base, view.head, view.config))
    return None if kept is None else kept.counts


def _drawn(view: View, files: Sequence[FileChange], counts: Sequence[tuple[int, int, bool]],
           *, color: bool) -> bytes | None:
    """git diff --stat drawn from the stored counts (diffstat.py), None to ask git."""
    width = diffstat.width_from(os.environ)
    if width is None or len(files) != len(counts) or not stat_usable(view, files):
        return None
    return diffstat.render([(ui.quote_path(c.path), a, d, b)
                            for c, (a, d, b) in zip(files, counts, strict=True)],
                           width=width, color=color)


def _diff_meanwhile(view: View, specs: Sequence[str], *, color: bool
                    ) -> Callable[[], bytes]:
    """git diff --stat started now, in a thread: it runs on the other core while the risks
    of every file are assessed (as long as git's own run, at 20,000 files). Its result (or
    error) comes from the function returned."""
    got: list[bytes] = []
    err: list[BaseException] = []

    def work() -> None:
        try:
            got.append(_diff(view, specs, color=color, stat=True))
        except BaseException as e:  # noqa: BLE001 - raised again in the main thread
            err.append(e)

    t = threading.Thread(target=work, name="diff-stat", daemon=True)
    t.start()

    def result() -> bytes:
        t.join()
        if err:
            raise err[0]
        return got[0]

    return result


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
    early = None
    color = ui.use_color(cwd=worktree.root)
    counts = _stored_counts(view, paths) if stat and not json_out else None
    if stat and not json_out and counts is None:
        early = _diff_meanwhile(view, pathspecs(worktree, paths), color=color)
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
    specs = pathspecs(worktree, paths)
    diff = early() if early is not None else None
    if counts is not None:  # None again where git must draw it: then git, as without counts
        diff = _drawn(view, files, counts, color=color)
    ui.page(render(view, files, specs, color=color, stat=stat, diff=diff), cwd=worktree.root)
    return 0
