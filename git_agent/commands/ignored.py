"""`git agent review --ignored` and `git agent apply --ignored -- PATHS`: the session's ignored
files (build outputs capture leaves out of the commit), listed with sizes or copied out."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from git_agent import session, ui
from git_agent.errors import GitAgentError, SessionBusy, UsageError
from git_agent.mergeback import engine, ignored, ignored_copy
from git_agent.mergeback.user_config import read_config
from git_agent.mergeback.view import View, find_session, to_repo_paths
from git_agent.repo import find_worktree


def _view(name: str | None) -> View:
    worktree = find_worktree()
    s = find_session(worktree, name)
    base = worktree.resolve(s.base_ref) or ""
    head = worktree.resolve(s.branch) or base or None
    return View(worktree=worktree, session=s, base=base, head=head or "",
                config=read_config(worktree))


def review_main(*, session_name: str | None, paths: Sequence[str]) -> int:
    view = _view(session_name)
    files = ignored.find(view.worktree, view.session, view.head or None)
    if paths:
        files = ignored.pick(files, to_repo_paths(view.worktree, paths), paths)
    if not files:
        ui.say(f"session {view.session.name!r} holds no ignored files")
        return 0
    lines = ignored.group(view.worktree, files)
    total = sum(f.size for f in files)
    out = [f"session {view.session.name}: {len(files)} ignored file"
           f"{'s' if len(files) != 1 else ''}, {ignored.human(total)}, left out of "
           f"{view.session.branch_name} by your ignore rules "
           "(`git agent apply --ignored -- PATH` copies them out):"]
    width = max(len(ui.quote_path(x.path)) + x.is_dir for x in lines)
    for x in lines:
        name = ui.quote_path(x.path) + ("/" if x.is_dir else "")
        what = (f"  ({x.files} file{'s' if x.files != 1 else ''}, a new directory)"
                if x.is_dir else "")
        out.append(f"  {name:<{width}}  {ignored.human(x.size):>9}{what}")
    ui.write_stdout(("\n".join(out) + "\n").encode("utf-8", "surrogateescape"))
    return 0


def apply_main(*, session_name: str | None, paths: Sequence[str], yes: bool) -> int:
    if not paths:
        raise UsageError("apply --ignored copies only the paths you name: "
                         "git agent apply --ignored -- PATH... (`git agent review --ignored` "
                         "lists them)")
    view = _view(session_name)
    engine.refuse_busy_worktree(view.worktree)
    try:
        lock = session.Lock(view.session, "apply")
        lock.__enter__()
    except SessionBusy as e:
        if e.doing == "run":
            raise GitAgentError(f"session {view.session.name!r} is running: its files may be "
                                "half written; copy them after it ends") from e
        raise
    try:
        files = ignored.find(view.worktree, view.session, view.head or None)
        picked = ignored.pick(files, to_repo_paths(view.worktree, paths), paths)
        copies = ignored_copy.read(view, picked)
        ignored_copy.check(view, copies)
        todo = [c for c in copies if not c.noop]
        if not todo:
            ui.say("your worktree already has them all; nothing to copy")
            return 0
        risky = [c for c in todo if c.risks]
        if risky:
            ui.echo(f"about to write {len(risky)} risky file{'s' if len(risky) != 1 else ''}:")
            for c in risky:
                for r in c.risks:
                    ui.echo(f"  ! {ui.quote_path(c.file.path)}: {r}")
            if not yes:
                if not sys.stdin.isatty():
                    raise GitAgentError("not writing risky files without a terminal to ask on; "
                                        "nothing was copied; review them, then use --yes")
                if ui.ask("write them? [y/N] ").lower() not in ("y", "yes"):
                    ui.echo("not copied; nothing was written")
                    return 1
        with ui.uninterrupted(notice=engine.FINISHING) as held:
            ignored_copy.write(view, todo)
        size = ignored.human(sum(c.file.size for c in todo))
        ui.echo(f"copied {len(todo)} ignored file{'s' if len(todo) != 1 else ''} ({size}) into "
                "your worktree; they stay in the session too")
        ui.finished_then_act_on(held, "the copy")
        return 0
    finally:
        lock.__exit__(None, None, None)
