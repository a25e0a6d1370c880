"""`git agent apply`: bring a session's changes into the working tree, merging where you edited.

The verb: which session and paths, the file-by-file chooser (-i), the session's lock, and what
is said at the end. Deciding and writing is the engine's (mergeback/engine.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from git_agent import proc, session, ui
from git_agent.errors import Conflict, GitAgentError, SessionBusy, UsageError
from git_agent.mergeback import engine, landing, pending
from git_agent.mergeback.engine import ApplyPlan
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


def choose(view: View, picked: Sequence[FileChange]) -> tuple[list[FileChange], list[FileChange]]:
    """Ask file by file; returns (to apply, to reject). EOF raises Aborted."""
    apply_: list[FileChange] = []
    reject: list[FileChange] = []
    bulk: str | None = None
    for i, c in enumerate(picked):
        answer = bulk
        verb = {"y": ": apply", "n": ": skip", "r": ": reject"}.get(answer or "", "")
        ui.echo(f"[{TAG[c.status]}] {c.shown}{verb}")
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
                ui.write_stdout(proc.run(diff_argv(view, spec, color=color, stat=False),
                                         cwd=view.worktree.root).stdout)
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
         yes: bool = False, commit: bool = False) -> int:
    if commit and (interactive or merge):
        raise UsageError("--commit lands whole commits: it takes no -i or --merge (limit it "
                         "with -- PATHS)")
    worktree = find_worktree()
    engine.refuse_busy_worktree(worktree)
    engine.warn_unfinished(worktree)
    try:
        view = open_view(worktree, session_name)
    except NothingCaptured as e:
        ui.say(f"{e}; nothing to apply")
        return 0
    everything = changes(view)
    picked = changes(view, paths=paths) if paths else everything
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

            return landing.main(view, picked, everything, running=running, confirm=confirm)
        return _apply(view, picked, everything, interactive=interactive, merge=merge,
                      running=running, yes=yes)
    finally:
        lock.__exit__(None, None, None)


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
           interactive: bool, merge: bool, running: bool, yes: bool) -> int:
    worktree = view.worktree
    refs_only = not view.session.dir.is_dir()
    if not running and not refs_only:
        engine.check_upper(view)
    if interactive:
        to_apply, to_reject = choose(view, picked)
    else:
        to_apply, to_reject = list(picked), []
    if not to_apply and not to_reject:
        ui.say("nothing chosen; nothing changed")
        return 0
    to_apply = engine.closure(to_apply, everything)
    refuse_foreign_git(to_apply)
    rejected = [c for c in to_reject if c.path not in {a.path for a in to_apply}]
    engine.refuse_split_rejection(rejected, to_apply, everything)
    p = engine.plan(view, to_apply, merge=merge)
    if p.conflicts and not merge:
        lines = "\n".join(f"  {a.change.shown}: {a.conflict}" for a in p.conflicts)
        raise Conflict(f"{len(p.conflicts)} path(s) conflict; nothing was applied "
                       f"(--merge writes conflict markers):\n{lines}")
    if not confirm_risky(p, merge=merge, yes=yes):
        ui.echo("not applied; nothing was written")
        return 1
    # what was written, or was already there; a conflict that kept yours stays in the session
    done = [a.change for a in p.actions if not (a.conflict and a.noop)]
    take = (None if running else pending.refs_only_take(view, [*done, *rejected]) if refs_only
            else engine.consumption(view, done, everything, rejected))
    # ^C cannot stop it halfway: the worktree written, the session giving the paths up and its
    # branch recaptured, all of it or (^C before this point) none
    held: list[int] = []
    try:
        with ui.uninterrupted() as held:
            engine.execute(worktree, p, merge=merge)
            if take is not None:
                try:
                    left = take()
                    if not refs_only:
                        capture_now(view.worktree, view.session, base=view.base, reason=(
                            "what is left after apply (applied and rejected paths removed)"))
                        pending.settle(view, view.head)  # agent/S: the pending work only
                except Exception as e:  # noqa: BLE001 - said whatever it is: the worktree is done
                    why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                    raise GitAgentError(
                        f"your worktree has all of the change, but the session could not be "
                        f"updated ({why}); run apply again once that is fixed: what is already "
                        "in your worktree counts as applied") from e
    except GitAgentError as e:
        if held:  # said, then the signal that came meanwhile does what it would have done
            ui.say(str(e))
            ui.act_on(held)
        raise
    report(p, rejected)
    if take is None:
        ui.say(f"session {view.session.name!r} is running: its files were left alone; "
               "apply again after it ends to drop what was applied from it")
    else:
        for path in left:
            ui.say(f"note: {ui.quote_path(path)} stays in review: the agent deleted or replaced "
                   "its directory whole; that is released once all of it is applied or rejected")
    if held:
        ui.say("interrupted, after apply finished (it does not stop halfway)")
        ui.act_on(held)
    return 1 if p.conflicts else 0


def report(p: ApplyPlan, rejected: Sequence[FileChange]) -> None:
    applied = [a for a in p.actions if not a.conflict]
    if applied:
        ui.echo(f"applied {len(applied)} file{'s' if len(applied) != 1 else ''}")
    for a in p.conflicts:
        if a.markers:
            ui.echo(f"conflict markers written in {a.change.shown} ({a.conflict})")
        else:
            ui.echo(f"conflict in {a.change.shown}: {a.conflict}")
    if rejected:
        ui.echo(f"rejected {len(rejected)} file{'s' if len(rejected) != 1 else ''}")
