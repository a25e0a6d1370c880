"""`git agent apply`: bring a session's changes into the working tree, merging where you edited.

The verb: which session and paths, the file-by-file chooser (-i), the session's lock, and what
is said at the end. Deciding and writing is the engine's (mergeback/engine.py).
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import sys
from collections.abc import Sequence

from git_agent import proc, session, ui
from git_agent.errors import Conflict, GitAgentError, SessionBusy, UsageError
from git_agent.mergeback import (
    branch_state,
    engine,
    hunk_fit,
    hunk_prompt,
    keep_hunks,
    landing,
    ledger,
    link_judge,
    marks,
    partial_base,
    pending,
)
from git_agent.mergeback.engine import Action, ApplyPlan
from git_agent.mergeback.hunk_prompt import Partial, Selection
from git_agent.mergeback.marks import Mark
from git_agent.mergeback.risks import FOREIGN_GIT
from git_agent.mergeback.view import (
    TAG,
    FileChange,
    NothingCaptured,
    View,
    capture_now,
    changes,
    diff_argv,
    open_view,
    repo_of,
    to_repo_paths,
)
from git_agent.repo import find_worktree

HELP = """\
y - apply this file
n - skip it (it stays in the session)
r - reject it (drop it from the session; your worktree keeps its version)
d - show its diff, then ask again
Y / N / R - the same for this and every remaining file
q - stop asking; apply what was chosen so far (the rest stays)
? - this help
"""


def choose(view: View, picked: Sequence[FileChange], marked: dict[bytes, Mark] | None = None,
           ) -> tuple[list[FileChange], list[FileChange]]:
    """Ask file by file; returns (to apply, to reject). EOF raises Aborted."""
    marked = marked or {}
    apply_: list[FileChange] = []
    reject: list[FileChange] = []
    bulk: str | None = None
    for i, c in enumerate(picked):
        answer = bulk
        verb = {"y": ": apply", "n": ": skip", "r": ": reject"}.get(answer or "", "")
        mark = marked.get(c.path)
        ui.echo(f"[{TAG[c.status]}] {c.shown}{f' ({mark.text})' if mark else ''}{verb}")
        for r in c.risks:
            ui.echo(f"  ! {r}")
        while answer is None:
            a = ui.ask(f"({i + 1}/{len(picked)}) apply {c.shown}? [y,n,r,d,Y,N,R,q,?] ")
            if a in ("Y", "N", "R"):
                bulk = answer = a.lower()
            elif a in ("y", "n", "r", "q"):
                answer = a
            elif a == "d":
                spec = [":(top,literal)" + c.path.decode("utf-8", "surrogateescape")]
                color = ui.use_color(cwd=view.worktree.root)
                plain = proc.run(diff_argv(view, spec, color=False, stat=False),
                                 cwd=view.worktree.root).stdout
                colored = (proc.run(diff_argv(view, spec, color=True, stat=False),
                                    cwd=view.worktree.root).stdout if color else None)
                ui.write_stdout(ui.shown_diff(plain, colored))  # the agent's bytes visible
            elif a == "?":
                ui.echo(HELP.rstrip())
            else:
                ui.echo(f"unknown answer {a!r}; ? shows the choices")
        if answer == "q":
            break
        if answer == "y":
            apply_.append(c)
        elif answer == "r":
            reject.append(c)
    return apply_, reject


def main(*, session_name: str | None, interactive: bool, merge: bool, paths: Sequence[str],
         yes: bool = False, patch: bool = False, skip_conflicts: bool = False,
         commit: bool = False) -> int:
    if commit and (interactive or patch or merge or skip_conflicts):
        raise UsageError("--commit lands whole commits: it takes no -i, -p, --merge or "
                         "--skip-conflicts (limit it with -- PATHS)")
    worktree = find_worktree()
    engine.refuse_busy_worktree(worktree)
    engine.warn_unfinished(worktree)
    try:
        view = open_view(worktree, session_name)
    except NothingCaptured as e:
        ui.say(f"{e}; nothing to apply")
        return 0
    refuse_checked_out(view)
    everything = changes(view)
    wanted = already_done(view, everything, paths)
    if wanted is None:
        return 0
    picked = changes(view, paths=wanted) if wanted else everything
    if not picked:
        ui.say(f"session {view.session.name!r} has no changes to apply")
        return 0
    # Not running: hold the session's lock to the end, so no run starts (and no agent changes
    # the upper) while we ask, write and take applied paths out of the session.
    lock = session.Lock(view.session, "apply")
    try:
        if view.session.dir.is_dir():  # else known by its refs alone: nothing to lock
            lock.__enter__()
        running = False
    except SessionBusy as e:
        if e.doing != "run":
            raise  # another apply, a drop, or a holder that did not say: wait for it
        running = True
    try:
        if commit:
            def confirm(p: ApplyPlan) -> bool:
                refuse_foreign_git([a.change for a in p.actions])
                return confirm_risky(p, merge=False, yes=yes)

            return landing.main(view, link_judge.judged(view, picked), everything,
                                running=running, confirm=confirm)
        return _apply(view, picked, everything, interactive=interactive, merge=merge,
                      running=running, yes=yes, patch=patch, skip_conflicts=skip_conflicts)
    finally:
        lock.__exit__(None, None, None)


def refuse_checked_out(view: View) -> None:
    """apply moves agent/S (to the pending work) once it has written: not while a worktree
    has that branch checked out (its HEAD would move under it), as `git branch -f` refuses."""
    where = branch_state.checked_out_in(view.worktree, view.session.branch)
    if where:
        shown = ui.quote_path(os.fsencode(where[0]))
        raise GitAgentError(
            f"{view.session.branch_name} is checked out in {shown}: apply moves that branch "
            f"after it writes; switch that worktree away first (`git -C {shown} switch "
            "--detach`); nothing was applied")


def refuse_foreign_git(to_apply: Sequence[FileChange]) -> None:
    """Rule 12.1: nothing applied may make git find another repository; no answer overrides."""
    bad = [c for c in to_apply if c.foreign]
    if bad:
        names = ", ".join(c.shown for c in bad[:5]) + (f" and {len(bad) - 5} more"
                                                       if len(bad) > 5 else "")
        raise GitAgentError(f"refusing to apply {names}: this {FOREIGN_GIT} or config than "
                            "yours (`git agent review` says why); nothing was applied; reject "
                            "it with `git agent apply -i` (r) or drop the session")


def confirm_risky(p: ApplyPlan, *, merge: bool, yes: bool) -> bool:
    """Repeat the risk lines of what is about to be written; on a terminal ask once, without
    one refuse unless --yes. False: the user said no."""
    risky = [a.change for a in p.actions
             if not a.noop and (merge or not a.conflict) and a.change.risks]
    if not risky:
        return True
    ui.echo(f"about to write {len(risky)} risky file{'s' if len(risky) != 1 else ''}:")
    for c in risky:
        for r in c.risks:
            ui.echo(f"  ! {c.shown}: {r}")
    if yes:
        return True
    if not sys.stdin.isatty():
        raise GitAgentError("not writing risky files without a terminal to ask on; nothing "
                            "was applied; review them, then apply with --yes")
    answer = ui.ask("write them? [y/N] ")
    return answer.lower() in ("y", "yes")


def _apply(view: View, picked: Sequence[FileChange], everything: Sequence[FileChange], *,
           interactive: bool, merge: bool, running: bool, yes: bool, patch: bool = False,
           skip_conflicts: bool = False) -> int:
    worktree = view.worktree
    refs_only = not view.session.dir.is_dir()
    if not running and not refs_only:
        engine.check_upper(view)
    if patch and refs_only:
        raise GitAgentError(f"session {view.session.name!r} is known only by its refs (its "
                            "folder is gone): apply -p keeps the hunks left in its overlay, "
                            "which it no longer has; apply whole files (-i, or -- PATHS)")
    marked = marks.marks(view, picked) if (interactive or patch) else {}
    sel = Selection()
    if patch:
        sel = hunk_prompt.choose(view, picked, marked)
        to_apply, to_reject = sel.whole + hunk_changes(view, sel), sel.reject
    elif interactive:
        to_apply, to_reject = choose(view, picked, marked)
    else:
        to_apply, to_reject = list(picked), []
    if not to_apply and not to_reject and not sel.partial:
        ui.say("nothing chosen; nothing changed")
        return 0
    partial = {q.change.path: q for q in sel.partial}
    hunked = {c.path: c for c in to_apply if c.path in partial}
    to_apply = [hunked.get(c.path, c) for c in engine.closure(to_apply, everything)]
    to_apply = link_judge.judged(view, to_apply)  # through exactly what this apply writes
    refuse_foreign_git(to_apply)
    rejected = [c for c in to_reject if c.path not in {a.path for a in to_apply}]
    engine.refuse_split_rejection(rejected, to_apply, everything)
    asked = interactive or patch
    p = engine.plan(view, to_apply, merge=merge or asked)
    refitted = 0
    if patch and not merge:  # hunks taken that no longer apply onto your file stay
        refitted = hunk_fit.refit(view, p, sel)
        partial = {q.change.path: q for q in sel.partial}
        hunked = {a.change.path: a.change for a in p.actions if a.change.path in partial}
    left = step_around(p, marked, sel.hunked, asked=asked, merge=merge,
                       skip_conflicts=skip_conflicts)
    if p.conflicts and not (merge or asked):
        lines = "\n".join(f"  {a.change.shown}: {a.conflict}" for a in p.conflicts)
        raise Conflict(f"{len(p.conflicts)} path(s) conflict; nothing was applied "
                       f"(--merge writes conflict markers, --skip-conflicts applies the "
                       f"rest):\n{lines}")
    if not confirm_risky(p, merge=True, yes=yes):
        ui.echo("not applied; nothing was written")
        return 1
    # what was written, or was already there; a conflict that kept yours stays in the session,
    # and so does a file of which some hunks stay (its upper file then holds just those)
    done = [a.change for a in p.actions if not (a.conflict and a.noop)
            and not (a.change.path in partial and partial[a.change.path].kept is not None)]
    kept = {q.change.path: q for q in sel.partial if q.kept is not None
            and q.change.path not in left}
    take = (None if running else pending.refs_only_take(view, [*done, *rejected]) if refs_only
            else engine.consumption(view, done, everything, rejected))
    # ^C cannot stop it halfway: the worktree written, the session giving the paths up and its
    # branch recaptured, all of it or (^C before this point) none
    held: list[int] = []
    covered: list[bytes] = []
    try:
        with ui.uninterrupted(notice=engine.FINISHING) as held:
            # what it replaced is removed meanwhile (the session's files are others)
            finish = engine.execute(worktree, p, merge=True, later=True)
            if take is not None:
                try:
                    covered = take()
                    if not refs_only:
                        for q in kept.values():
                            assert q.upper is not None
                            keep_hunks.keep_in_upper(view.session.upper, q.change.path,
                                                     q.upper, q.change.new_mode)
                        base = partial_base.advance(view, {
                            path: (hunked[path].new_mode, hunked[path].new_oid or "")
                            for path in kept if path in hunked})
                        capture_now(view.worktree, view.session, base=base, reason=(
                            "what is left after apply (applied and rejected paths removed)"))
                        # agent/S: the pending work only (on the base -p may have moved)
                        pending.settle(dataclasses.replace(view, base=base), view.head)
                    ledger.note(view.session, [c.path for c in done],
                                [c.path for c in rejected])
                except Exception as e:  # noqa: BLE001 - said whatever it is: the worktree is done
                    why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                    raise GitAgentError(
                        f"your worktree has all of the change, but the session could not be "
                        f"updated ({why}); run apply again once that is fixed: what is already "
                        "in your worktree counts as applied") from e
            finish()
    except GitAgentError as e:
        if held:  # said, then the signal that came meanwhile does what it would have done
            ui.say(str(e))
            ui.act_on(held)
        raise
    report(p, rejected, partial)
    for path, why in left.items():
        ui.echo(f"left in the session: {ui.quote_path(path)} ({why})")
    if take is None:
        ui.say(f"session {view.session.name!r} is running: its files were left alone; "
               "apply again after it ends to drop what was applied from it")
    else:
        for path in covered:
            ui.say(f"note: {ui.quote_path(path)} stays in review: the agent deleted or replaced "
                   "its directory whole; that is released once all of it is applied or rejected")
    ui.finished_then_act_on(held, "apply")
    return 1 if p.conflicts or left or refitted else 0  # not all you asked for is there


def hunk_changes(view: View, sel: Selection) -> list[FileChange]:
    """The files of which some hunks were taken, as changes to the base with just those."""
    repo = repo_of(view.worktree)
    return [dataclasses.replace(q.change, new_oid=str(repo.create_blob(q.taken)))
            for q in sel.partial if q.taken is not None]


def step_around(p: ApplyPlan, marked: dict[bytes, Mark], hunked: set[bytes], *,
                asked: bool, merge: bool, skip_conflicts: bool) -> dict[bytes, str]:
    """Take out of the plan the conflicts that stay in the session: with --skip-conflicts all
    of them; at a prompt those the user did not see as conflicts (the worktree changed
    since) and the hunks that no longer apply (unless --merge). Returns path -> why."""
    left: dict[bytes, str] = {}
    out: list[Action] = []
    for a in p.actions:
        path = a.change.path
        if not a.conflict:
            out.append(a)
        elif not asked and skip_conflicts and not merge:
            left[path] = f"conflicts: {a.conflict}"
        elif asked and not merge and path in hunked:
            left[path] = (f"the hunks you took do not apply onto your file ({a.conflict}); "
                          "none of its hunks were applied or discarded")
        elif asked and not merge and not (marked.get(path) and marked[path].conflict):
            left[path] = f"now conflicts with your file, changed since asked: {a.conflict}"
        else:
            out.append(a)
    p.actions = out
    return left


def _below_any(known: list[bytes], top: bytes) -> bool:
    """Is some path of the sorted known below the directory top? (They sort together.)"""
    j = bisect.bisect_left(known, top + b"/")
    return j < len(known) and known[j].startswith(top + b"/")


def already_done(view: View, everything: Sequence[FileChange],
                 paths: Sequence[str]) -> list[str] | None:
    """The paths given that the session still changes; one no longer there that apply took
    out of it is said so ("already applied", "discarded"). None: nothing is left to do."""
    if not paths:
        return list(paths)
    out: list[str] = []
    known = sorted(c.path for c in everything)
    exact = set(known)
    for raw, spec in zip(paths, to_repo_paths(view.worktree, paths), strict=True):
        top = spec.rstrip(b"/")
        if not spec or top in exact or _below_any(known, top):
            out.append(raw)
            continue
        what = ledger.done_at(view.session, spec)
        if what is None:
            out.append(raw)  # changes() says it is not among them
        elif what == ledger.APPLIED:
            ui.say(f"{raw}: already applied (session {view.session.name!r} no longer holds it)")
        else:
            ui.say(f"{raw}: already discarded from session {view.session.name!r} (your "
                   "worktree kept its version)")
    return out or None


def report(p: ApplyPlan, rejected: Sequence[FileChange], partial: dict[bytes, Partial]) -> None:
    applied = [a for a in p.actions if not a.conflict]
    whole = [a for a in applied if a.change.path not in partial]
    if whole:
        ui.echo(f"applied {len(whole)} file{'s' if len(whole) != 1 else ''}")
    for a in applied:
        if a.change.path in partial:
            q = partial[a.change.path]
            rest = ("; the rest stay in the session" if q.kept is not None
                    else "; the rest were discarded from the session" if q.discarded
                    else " as you edited them; the agent's version left the session")
            ui.echo(f"applied the hunks you took of {a.change.shown}{rest}")
    for path, q in partial.items():
        if q.taken is None:
            ui.echo(f"discarded hunks of {ui.quote_path(path)} from the session; the rest "
                    "stay in it")
    for a in p.conflicts:
        if a.markers:
            ui.echo(f"conflict markers written in {a.change.shown} ({a.conflict}); it left "
                    "the session")
        elif not a.noop:
            ui.echo(f"CONFLICT (modify/delete): {a.change.shown} was deleted in your worktree "
                    "and changed by the agent; the agent's version was written back over your "
                    "deletion (delete it again to keep it deleted)")
        else:
            ui.echo(f"conflict in {a.change.shown}: {a.conflict}; your version was kept and "
                    "the change stays in the session")
    if rejected:
        ui.echo(f"rejected {len(rejected)} file{'s' if len(rejected) != 1 else ''} "
                "(discarded from the session; your worktree kept its version)")
