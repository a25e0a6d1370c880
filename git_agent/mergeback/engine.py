"""The apply engine: decide every path of a pick (three-way, refusals), then write the plan.

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

from git_agent import proc, ui
from git_agent.errors import GitAgentError
from git_agent.gittree import BLOB, EXEC, GITLINK, LINK, TREE
from git_agent.mergeback import worktree_files as wtf
from git_agent.mergeback.journal import take_back
from git_agent.mergeback.view import FileChange, View, repo_of
from git_agent.mergeback.worktree_files import Entry
from git_agent.repo import Worktree

# said at once on ^C (or SIGTERM...) while apply writes: it ends only after the write
FINISHING = ("interrupted: finishing the write first (apply never stops halfway); it ends "
             "when the worktree and the session are done")


@dataclass
class Action:
    change: FileChange
    write: Entry | None  # what ends up at the path; None: delete it
    noop: bool = False  # the worktree already has it
    conflict: str | None = None  # why it does not apply cleanly
    markers: bool = False  # write holds conflict markers (--merge)
    keep_perms: int | None = None  # permission bits of the file it replaces
    before: Entry | None = None  # what the worktree held when apply read it
    before_sig: wtf.Sig | None = None  # and its lstat then


@dataclass
class ApplyPlan:
    actions: list[Action] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Action]:
        return [a for a in self.actions if a.conflict]


# --- deciding --------------------------------------------------------------------------------


def side(repo: pygit2.Repository, oid: str | None, mode: int) -> Entry | None:
    if oid is None:
        return None
    if mode == GITLINK:
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
        # markers with the base section (merge.conflictStyle=diff3; zdiff3 if you set it)
        style = proc.git("config", "merge.conflictStyle", cwd=cwd, check=False).strip()
        r = proc.run(["git", "merge-file", "-p",
                      "--zdiff3" if style == b"zdiff3" else "--diff3",
                      "-L", labels[0], "-L", labels[1],
                      "-L", labels[2], *names], cwd=cwd, check=False)
    if r.returncode > 127 or r.returncode < 0:
        return b"", -1
    return r.stdout, r.returncode


def decide(change: FileChange, base: Entry | None, work: Entry | None, agent: Entry | None, *,
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
    if work.mode == TREE:
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


def plan(view: View, picked: Sequence[FileChange], *, merge: bool) -> ApplyPlan:
    """Decide every path; nothing is written. Deletions are decided first, so a file may take
    the place of a directory (or of a link) that the same apply removes."""
    repo = repo_of(view.worktree)
    labels = ("worktree", "base", view.session.branch_name)
    for c in picked:
        wtf.components(c.path)
        if GITLINK in (c.old_mode, c.new_mode):
            raise GitAgentError(f"{c.shown}: a submodule change cannot be applied to files; "
                                "update the submodule yourself, or reject it with -i (r)")
    decided: dict[bytes, Action] = {}
    root_fd = wtf.open_root(view.worktree.root)
    reading = ui.Progress("reading your worktree", len(picked))
    try:
        deleting: set[bytes] = set()
        for c in sorted(picked, key=lambda c: c.new_oid is not None):
            base = side(repo, c.old_oid, c.old_mode)
            agent = side(repo, c.new_oid, c.new_mode)
            try:
                work, blocker, work_sig = wtf.read_signed(root_fd, c.path)
                if (work is not None and work.mode == TREE and agent is not None
                        and wtf.emptied_by(wtf.files_below(root_fd, c.path), deleting)):
                    work = None  # emptied by this apply's deletions
            except PermissionError:  # a file or dir of yours you may not read (mode 0000)
                decided[c.path] = Action(c, None, noop=True, conflict=(
                    "your worktree's file or directory there cannot be read (its permissions); "
                    "kept yours"))
                continue
            a = decide(c, base, work, agent, merge=merge, labels=labels,
                        cwd=view.worktree.root)
            a.before, a.before_sig = work, work_sig
            if agent is None and a.write is None and not a.conflict:
                deleting.add(c.path)
            if a.write is not None and not a.noop:
                if blocker is not None and blocker not in deleting:
                    a.conflict = f"{ui.quote_path(blocker)} is not a directory in your worktree"
                    a.noop, a.markers = True, False
                elif work is not None and work.is_file and a.write.is_file:
                    assert work_sig is not None
                    a.keep_perms = stat.S_IMODE(work_sig[0])  # its lstat, taken as it was read
            decided[c.path] = a
            reading.step()
    finally:
        wtf.close_root(root_fd)
        reading.done()
    return ApplyPlan([decided[c.path] for c in picked])


def closure(picked: Sequence[FileChange], everything: Sequence[FileChange]) -> list[FileChange]:
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
                ui.echo(f"also applying the deletion of {c.shown} (needed by {p.shown})")
                break
    return [c for c in everything if c.path in chosen]


# --- writing ---------------------------------------------------------------------------------


def execute(worktree: Worktree, p: ApplyPlan, *, merge: bool, later: bool = False
            ) -> Callable[[], None]:
    """Write the plan: deletions (deepest first), then wtf. Conflicts only with --merge.
    If a change fails (no space left, a read-only directory, a path changed since plan read
    it, ...), the ones made before it are taken back and ApplyFailed says which path failed
    and why. later: what it replaced is removed in a thread while the caller goes on; the
    function returned waits for that."""
    todo = [a for a in p.actions if not a.noop and (merge or not a.conflict)]
    # the dirs that get a file: a deletion that empties one does not remove it (its bits stay)
    keep_dirs = frozenset(a.change.path[:i] for a in todo if a.write is not None
                          for i, ch in enumerate(a.change.path) if ch == 0x2F)  # b"/"
    progress = ui.Progress("applying", len(todo))
    root_fd = wtf.open_root(worktree.root)
    spare = worktree.git_dir / f"agent-apply-{os.getpid()}-{os.urandom(4).hex()}"
    journal = wtf.Journal(root_fd, spare)
    a: Action | None = None
    try:
        deletions = [a for a in todo if a.write is None]
        for a in sorted(deletions, key=lambda a: -a.change.path.count(b"/")):
            wtf.delete(root_fd, a.change.path, journal, a.before, a.before_sig,
                         keep_dirs=keep_dirs)
            progress.step()
        for a in todo:
            if a.write is not None:
                bits = (None if a.keep_perms is None
                        else wtf.checkout_perms(a.keep_perms, a.write.mode == EXEC))
                wtf.write(root_fd, a.change.path, a.write, bits, journal, a.before,
                            a.before_sig)
                progress.step()
        return journal.done(later=later)
    except BaseException as e:
        where = "" if a is None else f" {'writing' if a.write else 'deleting'} {a.change.shown}"
        take_back(journal, e, what="apply", where=where, nothing=(
            "nothing was applied (your worktree is as it was) and the session keeps every file"))
        raise
    finally:
        wtf.close_root(root_fd)
        progress.done()


# --- the worktree and the session ------------------------------------------------------------

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


def refuse_split_rejection(rejected: Sequence[FileChange], applied: Sequence[FileChange],
                           everything: Sequence[FileChange]) -> None:
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
                    f"cannot reject {r.shown} and keep {q.shown} in the session: the agent put "
                    f"{q.shown if above else r.shown} there {how} "
                    f"{r.shown if above else q.shown}; reject or apply both")


def settled(view: View, rest: Sequence[FileChange]) -> set[bytes]:
    """The paths among rest that the worktree already holds exactly as the agent left them."""
    repo = repo_of(view.worktree)
    out: set[bytes] = set()
    root_fd = wtf.open_root(view.worktree.root)
    try:
        for c in rest:
            with contextlib.suppress(GitAgentError, OSError):
                if wtf.read(root_fd, c.path)[0] == side(repo, c.new_oid, c.new_mode):
                    out.add(c.path)
    finally:
        wtf.close_root(root_fd)
    return out


def _same_as_worktree(root_fd: int, full: bytes, path: bytes) -> bool:
    """Does the worktree hold at path exactly what the upper entry `full` holds?"""
    try:
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            mine = Entry(LINK, os.readlink(full))
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                mine = Entry(EXEC if st.st_mode & 0o100 else BLOB, f.read())
        else:
            return False
        return wtf.read(root_fd, path)[0] == mine
    except (OSError, GitAgentError):
        return False


def check_upper(view: View) -> None:
    from git_agent.mergeback import consume

    consume.check_upper(view.session)


def consumption(view: View, done: Sequence[FileChange], everything: Sequence[FileChange],
                rejected: Sequence[FileChange] = ()) -> Callable[[], list[bytes]]:
    """What drops the applied (done) and rejected paths from the session's upper dir, read and
    decided now (before apply writes); calling it removes them and returns the paths kept."""
    from git_agent.mergeback import consume as consume_mod

    repo = repo_of(view.worktree)
    bases = {}
    for c in rejected:
        base = side(repo, c.old_oid, c.old_mode)
        bases[c.path] = None if base is None else (base.mode, base.data)
    done_paths = {c.path for c in [*done, *rejected]}
    # the paths left pending that the worktree holds as the agent left them (apply's writes
    # do not touch them)
    pending_settled = settled(view, [c for c in everything if c.path not in done_paths])

    def take() -> list[bytes]:
        root_fd = wtf.open_root(view.worktree.root)
        try:
            return consume_mod.consume_paths(
                view.session.upper, done_paths, {c.path for c in everything}, pending_settled,
                lambda full, path: _same_as_worktree(root_fd, full, path), rejected=bases)
        finally:
            wtf.close_root(root_fd)

    return take
