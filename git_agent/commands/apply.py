"""`git agent apply`: bring a session's changes into the working tree, merging where you edited.

Everything is read and decided first (worktree state, three-way merges, refusals); only then
is the worktree written (worktree_files: by fd, one atomic rename per file, all of it taken
back if one write fails). The index and HEAD are never touched. Applied and rejected paths
then leave the session (consume.py) and the branch is captured again with the same base.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from git_agent import proc, session, ui
from git_agent.commands import review
from git_agent.commands.review import Change, View
from git_agent.errors import ApplyFailed, Conflict, GitAgentError, SessionBusy
from git_agent.mergeback import worktree_files as files
from git_agent.mergeback.risks import MODE_EXEC, MODE_FILE, MODE_GITLINK, MODE_LINK
from git_agent.mergeback.worktree_files import MODE_DIR, Entry
from git_agent.repo import Worktree, find_worktree


@dataclass
class Action:
    change: Change
    write: Entry | None  # what ends up at the path; None: delete it
    noop: bool = False  # the worktree already has it
    conflict: str | None = None  # why it does not apply cleanly
    markers: bool = False  # write holds conflict markers (--merge)
    keep_perms: int | None = None  # permission bits of the file it replaces
    before: Entry | None = None  # what the worktree held when apply read it
    before_sig: files.Sig | None = None  # and its lstat then


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Action]:
        return [a for a in self.actions if a.conflict]


# --- deciding --------------------------------------------------------------------------------


def _side(repo: pygit2.Repository, oid: str | None, mode: int) -> Entry | None:
    if oid is None:
        return None
    if mode == MODE_GITLINK:
        return Entry(mode, oid.encode())
    blob = repo.get(oid)
    assert isinstance(blob, pygit2.Blob)
    return Entry(mode, blob.data)


def merge_text(base: bytes, ours: bytes, theirs: bytes, *, labels: tuple[str, str, str],
               cwd: Path) -> tuple[bytes, int]:
    """git merge-file -p: (result, conflicts); conflicts < 0 when git cannot merge (binary)."""
    with tempfile.TemporaryDirectory(prefix="git-agent-merge-") as tmp:
        names = []
        for n, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            p = os.path.join(tmp, n)
            with open(p, "wb") as f:
                f.write(data)
            names.append(p)
        r = proc.run(["git", "merge-file", "-p", "-L", labels[0], "-L", labels[1],
                      "-L", labels[2], *names], cwd=cwd, check=False)
    if r.returncode > 127 or r.returncode < 0:
        return b"", -1
    return r.stdout, r.returncode


def _decide(change: Change, base: Entry | None, work: Entry | None, agent: Entry | None, *,
            merge: bool, labels: tuple[str, str, str], cwd: Path) -> Action:
    if work == agent:
        return Action(change, agent, noop=True)
    if work == base:
        return Action(change, agent)
    if agent is None:
        why = "deleted by the agent, changed in your worktree"
        return Action(change, work, noop=True, conflict=why)  # --merge keeps yours
    if work is None:
        return Action(change, agent, conflict="changed by the agent, deleted in your worktree")
    if work.mode == MODE_DIR:
        return Action(change, work, noop=True, conflict="a directory in your worktree")
    if not (work.is_file and agent.is_file and (base is None or base.is_file)):
        what = "added by both, differently" if base is None else "changed by both"
        return Action(change, work, noop=True, conflict=f"{what} (not text files: kept yours)")
    text, n = merge_text(b"" if base is None else base.data, work.data, agent.data,
                         labels=labels, cwd=cwd)
    if n < 0:
        return Action(change, work, noop=True, conflict="binary file changed by both (kept yours)")
    mode = agent.mode if base is not None and work.mode == base.mode else work.mode
    if n == 0:
        return Action(change, Entry(mode, text))
    what = "added by both, differently" if base is None else "changed by both, overlapping"
    return Action(change, Entry(mode, text), conflict=what, markers=True)


def plan(view: View, picked: Sequence[Change], *, merge: bool) -> Plan:
    """Decide every path; nothing is written. Deletions are decided first, so a file may take
    the place of a directory (or of a link) that the same apply removes."""
    repo = review.repo_of(view.worktree)
    labels = ("worktree", "base", view.session.branch.removeprefix("refs/heads/"))
    for c in picked:
        files.components(c.path)
        if MODE_GITLINK in (c.old_mode, c.new_mode):
            raise GitAgentError(f"{c.name}: a submodule change cannot be applied to files; "
                                "update the submodule yourself, or reject it with -i (r)")
    decided: dict[bytes, Action] = {}
    root_fd = files.open_root(view.worktree.root)
    try:
        deleting: set[bytes] = set()
        for c in sorted(picked, key=lambda c: c.new_oid is not None):
            base = _side(repo, c.old_oid, c.old_mode)
            agent = _side(repo, c.new_oid, c.new_mode)
            try:
                work, blocker, work_sig = files.read_signed(root_fd, c.path)
                if (work is not None and work.mode == MODE_DIR and agent is not None
                        and files.emptied_by(files.files_below(root_fd, c.path), deleting)):
                    work = None  # emptied by this apply's deletions
            except PermissionError:  # a file or dir of yours you may not read (mode 0000)
                decided[c.path] = Action(c, None, noop=True, conflict=(
                    "your worktree's file or directory there cannot be read (its permissions); "
                    "kept yours"))
                continue
            a = _decide(c, base, work, agent, merge=merge, labels=labels,
                        cwd=view.worktree.root)
            a.before, a.before_sig = work, work_sig
            if agent is None and a.write is None and not a.conflict:
                deleting.add(c.path)
            if a.write is not None and not a.noop:
                if blocker is not None and blocker not in deleting:
                    a.conflict = f"{os.fsdecode(blocker)} is not a directory in your worktree"
                    a.noop, a.markers = True, False
                elif work is not None and work.is_file and a.write.is_file:
                    assert work_sig is not None
                    a.keep_perms = stat.S_IMODE(work_sig[0])  # its lstat, taken as it was read
            decided[c.path] = a
    finally:
        os.close(root_fd)
    return Plan([decided[c.path] for c in picked])


def closure(picked: Sequence[Change], everything: Sequence[Change]) -> list[Change]:
    """Add the deletions a pick needs: a file or link replaced by the dir holding it, and the
    files of a dir replaced by a file. Kept in review order."""
    chosen = {c.path for c in picked}
    for c in everything:
        if c.status != "deleted" or c.path in chosen:
            continue
        for p in picked:
            if p.path.startswith(c.path + b"/") or (
                    p.status != "deleted" and c.path.startswith(p.path + b"/")):
                chosen.add(c.path)
                ui.echo(f"also applying the deletion of {c.name} (needed by {p.name})")
                break
    return [c for c in everything if c.path in chosen]


# --- writing ---------------------------------------------------------------------------------


def execute(worktree: Worktree, p: Plan, *, merge: bool) -> None:
    """Write the plan: deletions (deepest first), then files. Conflicts only with --merge.
    If a change fails (no space left, a read-only directory, a path changed since plan read
    it, ...), the ones made before it are taken back and ApplyFailed says which path failed
    and why."""
    todo = [a for a in p.actions if not a.noop and (merge or not a.conflict)]
    # the dirs that get a file: a deletion that empties one does not remove it (its bits stay)
    keep_dirs = frozenset(a.change.path[:i] for a in todo if a.write is not None
                          for i, ch in enumerate(a.change.path) if ch == 0x2F)  # b"/"
    progress = ui.Progress("applying", len(todo))
    root_fd = files.open_root(worktree.root)
    spare = worktree.git_dir / f"agent-apply-{os.getpid()}-{os.urandom(4).hex()}"
    journal = files.Journal(root_fd, spare)
    a: Action | None = None
    try:
        deletions = [a for a in todo if a.write is None]
        for a in sorted(deletions, key=lambda a: -a.change.path.count(b"/")):
            files.delete(root_fd, a.change.path, journal, a.before, a.before_sig,
                         keep_dirs=keep_dirs)
            progress.step()
        for a in todo:
            if a.write is not None:
                bits = (None if a.keep_perms is None
                        else files.checkout_perms(a.keep_perms, a.write.mode == MODE_EXEC))
                files.write(root_fd, a.change.path, a.write, bits, journal, a.before,
                            a.before_sig)
                progress.step()
        journal.done()
    except BaseException as e:
        failed = journal.undo()
        if not isinstance(e, (OSError, GitAgentError)):
            raise
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        where = "" if a is None else f" {'writing' if a.write else 'deleting'} {a.change.name}"
        if failed:
            lines = "\n".join(f"  {line}" for line in failed)
            raise ApplyFailed(f"apply failed{where}: {why}; these paths could not be "
                              f"put back as they were:\n{lines}") from e
        raise ApplyFailed(f"apply failed{where}: {why}; nothing was applied (your "
                          "worktree is as it was) and the session keeps every file") from e
    finally:
        os.close(root_fd)
        progress.done()


# --- the command -----------------------------------------------------------------------------

IN_PROGRESS = {
    "MERGE_HEAD": "a merge", "rebase-merge": "a rebase", "rebase-apply": "a rebase or am",
    "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert", "sequencer": "a sequence",
}


def refuse_busy_worktree(worktree: Worktree) -> None:
    for name, what in IN_PROGRESS.items():
        if (worktree.git_dir / name).exists():
            raise GitAgentError(f"{what} is in progress in this worktree; finish or abort it, "
                                "then apply")


def warn_unfinished(worktree: Worktree) -> None:
    """An apply killed while it wrote (kill -9, a power cut) left what it replaced in git's dir:
    say where, once per apply, until the user removes it."""
    for left in sorted(worktree.git_dir.glob("agent-apply-*")):
        pid = left.name.split("-")[2]
        if not (pid.isdigit() and os.path.exists(f"/proc/{pid}")):  # its apply is gone
            ui.say(f"warning: an apply was stopped while it wrote (kill -9, power cut?); the "
                   f"files it replaced or deleted are in {left} (names are numbers, in the "
                   "order it wrote); look, then remove that directory")


HELP = """\
y - apply this file
n - skip it (it stays in the session)
r - reject it (drop it from the session; your worktree keeps its version)
d - show its diff, then ask again
Y / N / R - the same for this and every remaining file
q - stop asking; apply what was chosen so far (the rest stays)
? - this help
"""


def choose(view: View, files: Sequence[Change]) -> tuple[list[Change], list[Change]]:
    """Ask file by file; returns (to apply, to reject). EOF raises Aborted."""
    apply_: list[Change] = []
    reject: list[Change] = []
    bulk: str | None = None
    for i, c in enumerate(files):
        answer = bulk
        verb = {"y": ": apply", "n": ": skip", "r": ": reject"}.get(answer or "", "")
        ui.echo(f"[{review.TAG[c.status]}] {c.name}{verb}")
        for r in c.risks:
            ui.echo(f"  ! {r}")
        while answer is None:
            a = ui.ask(f"({i + 1}/{len(files)}) apply {c.name}? [y,n,r,d,Y,N,R,q,?] ")
            if a in ("Y", "N", "R"):
                bulk = answer = a.lower()
            elif a in ("y", "n", "r", "q"):
                answer = a
            elif a == "d":
                spec = [":(top,literal)" + c.path.decode("utf-8", "surrogateescape")]
                color = ui.use_color(cwd=view.worktree.root)
                ui.write_stdout(proc.run(review.diff_argv(view, spec, color=color, stat=False),
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


def main(*, session_name: str | None, interactive: bool, merge: bool, paths: Sequence[str]) -> int:
    worktree = find_worktree()
    refuse_busy_worktree(worktree)
    warn_unfinished(worktree)
    try:
        view = review.open_view(worktree, session_name)
    except review.NothingCaptured as e:
        ui.say(f"{e}; nothing to apply")
        return 0
    everything = review.changes(view)
    files = review.changes(view, paths=paths) if paths else everything
    if not files:
        ui.say(f"session {view.session.name!r} has no changes to apply")
        return 0
    # Not running: hold the session's lock to the end, so no run starts (and no agent changes
    # the upper) while we ask, write and take applied paths out of the session.
    lock = session.Lock(view.session, "apply")
    try:
        lock.__enter__()
        running = False
    except SessionBusy as e:
        if e.doing != "run":
            raise  # another apply, a drop, or a holder that did not say: wait for it
        running = True
    try:
        return _apply(view, files, everything, interactive=interactive, merge=merge,
                      running=running)
    finally:
        lock.__exit__(None, None, None)


def _apply(view: View, files: Sequence[Change], everything: Sequence[Change], *,
           interactive: bool, merge: bool, running: bool) -> int:
    worktree = view.worktree
    if not running:
        check_upper(view)
    if interactive:
        to_apply, to_reject = choose(view, files)
    else:
        to_apply, to_reject = list(files), []
    if not to_apply and not to_reject:
        ui.say("nothing chosen; nothing changed")
        return 0
    to_apply = closure(to_apply, everything)
    rejected = [c for c in to_reject if c.path not in {a.path for a in to_apply}]
    refuse_split_rejection(rejected, to_apply, everything)
    p = plan(view, to_apply, merge=merge)
    if p.conflicts and not merge:
        lines = "\n".join(f"  {a.change.name}: {a.conflict}" for a in p.conflicts)
        raise Conflict(f"{len(p.conflicts)} path(s) conflict; nothing was applied "
                       f"(--merge writes conflict markers):\n{lines}")
    # what was written, or was already there; a conflict that kept yours stays in the session
    done = [a.change for a in p.actions if not (a.conflict and a.noop)]
    take = None if running else consumption(view, done, everything, rejected)
    # ^C cannot stop it halfway: the worktree written, the session giving the paths up and its
    # branch recaptured, all of it or (^C before this point) none
    held: list[int] = []
    try:
        with ui.uninterrupted() as held:
            execute(worktree, p, merge=merge)
            if take is not None:
                try:
                    left = take()
                    review.capture_now(view.worktree, view.session, base=view.base, reason=(
                        "what is left after apply (applied and rejected paths removed)"))
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
            ui.say(f"note: {os.fsdecode(path)} stays in review: the agent deleted or replaced "
                   "its directory whole; that is released once all of it is applied or rejected")
    if held:
        ui.say("interrupted, after apply finished (it does not stop halfway)")
        ui.act_on(held)
    return 1 if p.conflicts else 0


def refuse_split_rejection(rejected: Sequence[Change], applied: Sequence[Change],
                           everything: Sequence[Change]) -> None:
    """A rejected path goes back to its base version for good; refuse when that cannot stand
    next to a path that stays in the session: a file or link restored where the agent's dir
    holds pending paths, or a deleted file restored where a pending file of the agent's
    stands for its dir."""
    chosen = {c.path for c in rejected} | {c.path for c in applied}
    pending = [c for c in everything if c.path not in chosen]
    for r in rejected:
        for q in pending:
            below = q.path.startswith(r.path + b"/")
            above = r.path.startswith(q.path + b"/")
            if r.old_oid is not None and (below or (above and q.new_oid is not None)):
                how = "holding" if below else "replacing the directory of"
                raise GitAgentError(
                    f"cannot reject {r.name} and keep {q.name} in the session: the agent put "
                    f"{q.name if above else r.name} there {how} "
                    f"{r.name if above else q.name}; reject or apply both")


def report(p: Plan, rejected: Sequence[Change]) -> None:
    applied = [a for a in p.actions if not a.conflict]
    if applied:
        ui.echo(f"applied {len(applied)} file{'s' if len(applied) != 1 else ''}")
    for a in p.conflicts:
        if a.markers:
            ui.echo(f"conflict markers written in {a.change.name} ({a.conflict})")
        else:
            ui.echo(f"conflict in {a.change.name}: {a.conflict}")
    if rejected:
        ui.echo(f"rejected {len(rejected)} file{'s' if len(rejected) != 1 else ''}")


def settled(view: View, rest: Sequence[Change]) -> set[bytes]:
    """The paths among rest that the worktree already holds exactly as the agent left them."""
    repo = review.repo_of(view.worktree)
    out: set[bytes] = set()
    root_fd = files.open_root(view.worktree.root)
    try:
        for c in rest:
            with contextlib.suppress(GitAgentError, OSError):
                if files.read(root_fd, c.path)[0] == _side(repo, c.new_oid, c.new_mode):
                    out.add(c.path)
    finally:
        os.close(root_fd)
    return out


def _same_as_worktree(root_fd: int, full: bytes, path: bytes) -> bool:
    """Does the worktree hold at path exactly what the upper entry `full` holds?"""
    try:
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            mine = Entry(MODE_LINK, os.readlink(full))
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                mine = Entry(MODE_EXEC if st.st_mode & 0o100 else MODE_FILE, f.read())
        else:
            return False
        return files.read(root_fd, path)[0] == mine
    except (OSError, GitAgentError):
        return False


def check_upper(view: View) -> None:
    from git_agent.mergeback import consume

    consume.check_upper(view.session)


def consumption(view: View, done: Sequence[Change], everything: Sequence[Change],
                rejected: Sequence[Change] = ()) -> Callable[[], list[bytes]]:
    """What drops the applied (done) and rejected paths from the session's upper dir, read and
    decided now (before apply writes); calling it removes them and returns the paths kept."""
    from git_agent.mergeback import consume as consume_mod

    repo = review.repo_of(view.worktree)
    bases = {}
    for c in rejected:
        base = _side(repo, c.old_oid, c.old_mode)
        bases[c.path] = None if base is None else (base.mode, base.data)
    done_paths = {c.path for c in [*done, *rejected]}
    # the paths left pending that the worktree holds as the agent left them (apply's writes
    # do not touch them)
    pending_settled = settled(view, [c for c in everything if c.path not in done_paths])

    def take() -> list[bytes]:
        root_fd = files.open_root(view.worktree.root)
        try:
            return consume_mod.consume_paths(
                view.session.upper, done_paths, {c.path for c in everything}, pending_settled,
                lambda full, path: _same_as_worktree(root_fd, full, path), rejected=bases)
        finally:
            os.close(root_fd)

    return take
