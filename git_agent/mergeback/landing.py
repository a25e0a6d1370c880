"""`git agent apply --commit`: the session landed as commits on your branch, as cherry-pick would.

Each commit of agent/S since its base (the agent's own commits, then the captures of what it
left uncommitted), oldest first, becomes one commit on HEAD: its change against its parent
merged three-way onto HEAD's tree, its author and message kept, you as the committer (`git
var GIT_COMMITTER_IDENT`). With PATHS each commit keeps only its changes to them; a commit
that keeps nothing, or whose change HEAD already has, is left out. Everything is decided first:
a conflict refuses the whole landing with nothing written. Refused too: a landed tree other
than plain apply's (what review showed); a landed commit that brings another repository or a
submodule (land_judge; its risky paths go to the prompt); staged changes in the
index; anything the index does not track (untracked or ignored) where
the landing writes (land_way); a change to a tracked file a commit writes (said which, by
git). The worktree and index are then moved by `git read-tree -m -u` (what checkout and
cherry-pick do) and HEAD by compare-and-swap: your branch, or a detached HEAD alone (said); no
other branch moves. The landed paths then leave the session, as with any apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pygit2

from git_agent import proc, ui
from git_agent.capture import rewrite
from git_agent.capture.tree import Odb
from git_agent.capture.treediff import diff_trees
from git_agent.errors import Conflict, GitAgentError
from git_agent.mergeback import engine, land_judge, land_undo, land_way, partial_base, pending
from git_agent.mergeback.engine import Action, ApplyPlan
from git_agent.mergeback.view import FileChange, View, capture_now
from git_agent.repo import Worktree


def _merge(repo: pygit2.Repository, odb: Odb, ancestor: bytes, ours: bytes, theirs: bytes,
           what: str) -> bytes:
    """The three-way merge of two trees; Conflict (nothing written) when it does not merge."""
    if ours in (ancestor, theirs):
        return theirs
    if theirs == ancestor:
        return ours
    idx = repo.merge_trees(pygit2.Oid(raw=ancestor), pygit2.Oid(raw=ours),
                           pygit2.Oid(raw=theirs))
    if idx.conflicts is not None:
        paths = sorted({e.path for entries in idx.conflicts for e in entries if e is not None})
        shown = ", ".join(ui.quote_path(p) for p in paths[:5]) + (
            f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        raise Conflict(f"{what} conflicts with your branch at {shown}; nothing was landed "
                       "(`git agent apply --merge` writes conflict markers in the worktree)")
    oid: bytes = idx.write_tree(repo).raw
    return oid


def _safe(text: str) -> str:
    """text with what could drive a terminal (escapes, control characters) written out."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _text(data: bytes, encoding: bytes | None) -> str:
    """A commit header's or message's bytes as text, read in its `encoding` (UTF-8 when none,
    or one Python does not know; undecodable bytes as U+FFFD)."""
    name = (encoding or b"utf-8").decode("ascii", "replace").strip()
    try:
        return data.decode(name, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _clean(text: str) -> bytes:
    """UTF-8, with what could drive a terminal written out (`git log` prints messages and
    names raw); newlines and tabs kept."""
    return "\n".join("\t".join(_safe(part) for part in line.split("\t"))
                     for line in text.split("\n")).encode()


def _subject(message: bytes, encoding: bytes | None = None) -> str:
    """A commit's subject, for a terminal (the agent wrote it)."""
    return _safe(_text(message, encoding).split("\n", 1)[0][:72])


def plan(view: View, picked: Sequence[FileChange], everything: Sequence[FileChange]
         ) -> tuple[bytes, list[tuple[bytes, str]], list[FileChange]]:
    """(new tip, [(its landed copy, its subject)], the risky changes of each landed commit
    beyond what review showed); objects written, no ref moved."""
    wt = view.worktree
    head = wt.head_oid()
    assert head is not None
    wanted = {c.path for c in picked}
    every = len(picked) == len(everything)
    repo, odb = rewrite.new_odb(wt, loose=True)
    if not rewrite.above_base(repo, odb, view.base, view.head):
        raise GitAgentError(f"{view.session.branch_name} does not descend from its base "
                            f"{view.base[:12]}: no commits to land; apply it without --commit")
    who = rewrite.committer(wt)
    tip = bytes.fromhex(head)
    tip_tree = start_tree = rewrite.read_commit(odb, tip).tree
    landed: list[tuple[bytes, str]] = []
    risky: list[FileChange] = []
    reviewed = {c.path: c.new_oid for c in everything}
    # your uncommitted work the base snapshot held: never landed as the agent's; each commit's
    # change is taken against its parent with that work in it
    yours = rewrite.user_work(odb, bytes.fromhex(view.base))
    for oid in rewrite.unrecorded(wt, view.head, partial_base.known(view)):
        c = rewrite.read_commit(odb, oid)
        parent = (rewrite.read_commit(odb, c.parents[0]).tree if c.parents
                  else odb.write_tree({}))
        touched = [p for _, p in diff_trees(odb, parent, c.tree)
                   if p not in yours or odb.lookup(c.tree, p) != yours[p]]
        kept = touched if every else [p for p in touched if p in wanted]
        if not kept:
            continue
        before = (rewrite.edit_tree(odb, parent, yours) or odb.write_tree({})) if yours \
            else parent
        theirs = (rewrite.edit_tree(odb, before, rewrite.tree_entries(odb, c.tree, kept))
                  or odb.write_tree({}))
        merged = _merge(repo, odb, before, tip_tree, theirs,
                        f"commit {oid.hex()[:12]} ('{_subject(c.message, c.encoding)}')")
        if merged == tip_tree:
            continue  # your branch has it already (cherry-pick leaves such a commit out)
        risky += land_judge.judge(repo, odb, view.config, tip_tree, merged,
                                  f"commit {oid.hex()[:12]} ('{_subject(c.message, c.encoding)}')",
                                  reviewed, str(wt.root))
        # in UTF-8 (its encoding header dropped: UTF-7 can spell ESC), control characters
        # written out: the message and author reach your terminal through `git log`
        tip = rewrite.write_commit(odb, tree=merged, parents=[tip],
                                   author=_clean(_text(c.author, c.encoding)), committer=who,
                                   message=_clean(_text(c.message, c.encoding)))
        tip_tree = merged
        landed.append((tip, _subject(c.message, c.encoding)))
    _same_as_review(view, repo, odb, start_tree, tip_tree, None if every else wanted)
    return tip, landed, risky


def _same_as_review(view: View, repo: pygit2.Repository, odb: Odb, head_tree: bytes,
                    landed_tree: bytes, wanted: set[bytes] | None) -> None:
    """What the commits land must be what review showed: the tree plain apply gives (the
    net change base..agent/S, limited to the paths asked for, merged three-way onto HEAD).
    Any path that differs (a commit undoing a change of yours that review never shows):
    refused, naming it."""
    base_tree = rewrite.read_commit(odb, bytes.fromhex(view.base)).tree
    agent_tree = rewrite.read_commit(odb, bytes.fromhex(view.head)).tree
    theirs = agent_tree if wanted is None else (
        rewrite.edit_tree(odb, base_tree, rewrite.tree_entries(odb, agent_tree, sorted(wanted)))
        or odb.write_tree({}))
    expected = _merge(repo, odb, base_tree, head_tree, theirs,
                      f"the change of {view.session.branch_name} (as review shows it)")
    if expected == landed_tree:
        return
    paths = [ui.quote_path(p) for _, p in diff_trees(odb, expected, landed_tree)]
    raise GitAgentError(
        f"refusing --commit: the commits of {view.session.branch_name} would leave "
        f"{', '.join(paths[:5])}{f' and {len(paths) - 5} more' if len(paths) > 5 else ''} "
        "other than review shows (plain apply's result); nothing was landed; apply it "
        "without --commit, or review its commits (git log -p)")


def refuse_staged(wt: Worktree) -> None:
    r = proc.run(["git", "diff-index", "--cached", "--quiet", "HEAD", "--"], cwd=wt.root,
                 check=False)
    if r.returncode != 0:
        raise GitAgentError("your index has staged changes; --commit lands the session as "
                            "commits of its own: commit or unstage them first "
                            "(`git restore --staged .`)")


def _refuse_untracked(wt: Worktree, old: str, new: bytes) -> None:
    """Nothing the index does not track (untracked or ignored) is written over (land_way)."""
    repo, odb = rewrite.new_odb(wt, loose=True)
    found = land_way.in_the_way(wt, odb, rewrite.read_commit(odb, bytes.fromhex(old)).tree,
                                rewrite.read_commit(odb, new).tree)
    del repo
    if found:
        names = ", ".join(ui.quote_path(p) for p in found[:10])
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        raise GitAgentError(
            f"your worktree has files git does not track (untracked or ignored) where the "
            f"commits write: {names}{more}; move them first; nothing was landed")


def _put_back(wt: Worktree, old: str, new: bytes, index: bytes, err: str) -> None:
    """read-tree failed partway: what it wrote is taken back (land_undo), and said so."""
    why = _safe(err.strip().splitlines()[-1] if err.strip() else "no reason given")
    repo, odb = rewrite.new_odb(wt, loose=True)
    try:
        land_undo.put_back(wt, odb, rewrite.read_commit(odb, bytes.fromhex(old)).tree,
                           rewrite.read_commit(odb, new).tree, index)
    except Exception as e:  # noqa: BLE001 - said whatever it is
        what = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise GitAgentError(
            f"git read-tree failed while writing ({why}), and what it wrote could not all be "
            f"put back ({_safe(what)}): your worktree may hold part of the landing (`git "
            "status` shows it); HEAD and your branch did not move; nothing was landed") from e
    finally:
        del repo
    raise GitAgentError(f"git read-tree failed while writing ({why}); what it had written "
                        "was put back: worktree, index and HEAD are as they were; nothing was "
                        "landed")


def _move(wt: Worktree, old: str, new: bytes, name: str) -> None:
    """Index and worktree by `git read-tree -m -u` (checked whole first: nothing written
    when it refuses), then HEAD by compare-and-swap."""
    proc.run(["git", "update-index", "-q", "--refresh"], cwd=wt.root, check=False)
    index = b""
    for dry in (True, False):
        if not dry:
            index = land_undo.read_index(wt)
        r = proc.run(["git", "read-tree", *(["-n"] if dry else []), "-m", "-u", old, new.hex()],
                     cwd=wt.root, check=False)
        if r.returncode != 0:
            err = r.stderr.decode("utf-8", "replace")
            if not dry:
                _put_back(wt, old, new, index, err)
            paths = [ui.quote_path(x.strip()) for x in err.splitlines() if x.startswith("\t")]
            paths += [ui.quote_path(m.group(1))
                      for m in re.finditer(r"Entry '(.*)' not uptodate", err)]
            if paths:
                raise GitAgentError(
                    "your worktree has changes (or files git does not track) at paths the "
                    f"commits write: {', '.join(paths[:10])}"
                    f"{f' and {len(paths) - 10} more' if len(paths) > 10 else ''}; commit, "
                    "stash or move them first; nothing was landed")
            raise GitAgentError(f"git read-tree refused: {_safe(err.strip())}; nothing was "
                                "landed")
    r = proc.run(["git", "update-ref", "-m", f"git agent: apply --commit {name}", "HEAD",
                  new.hex(), old], cwd=wt.root, check=False)
    if r.returncode != 0:  # HEAD moved meanwhile: the worktree goes back
        proc.run(["git", "read-tree", "-m", "-u", new.hex(), old], cwd=wt.root, check=False)
        raise GitAgentError("HEAD moved while landing; nothing was landed; try again")


def main(view: View, picked: Sequence[FileChange], everything: Sequence[FileChange], *,
         running: bool, confirm: Callable[[ApplyPlan], bool]) -> int:
    wt, s = view.worktree, view.session
    head, ref = wt.head_oid(), wt.head_ref()
    if head is None:
        raise GitAgentError("your branch has no commit yet: --commit lands on one; commit "
                            "first, or apply without --commit")
    if ref == s.branch:
        raise GitAgentError(f"{s.branch_name} is checked out here; switch to your branch "
                            "to land it there")
    refuse_staged(wt)
    tip, landed, risky = plan(view, picked, everything)
    _refuse_untracked(wt, head, tip)
    if not confirm(ApplyPlan([Action(c, None) for c in [*picked, *risky]])):
        ui.echo("not applied; nothing was written")
        return 1
    refs_only = not s.dir.is_dir()
    take = (None if running else pending.refs_only_take(view, picked) if refs_only
            else engine.consumption(view, picked, everything))
    with ui.uninterrupted() as held:
        if landed:
            _move(wt, head, tip, s.name)
        if take is not None:
            try:
                take()
                if not refs_only:
                    capture_now(wt, s, base=view.base, reason=(
                        "what is left after apply --commit (landed paths removed)"))
                    pending.settle(view, view.head)
            except Exception as e:  # noqa: BLE001 - said whatever it is: the branch is done
                why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                ui.say(f"the commits landed, but the session could not be updated ({why}); "
                       "run apply again once that is fixed")
                return 1
    where = ref.removeprefix("refs/heads/") if ref and ref.startswith("refs/heads/") else None
    if landed:
        n = len(landed)
        ui.echo(f"landed {n} commit{'s' if n != 1 else ''} on "
                f"{where or 'the detached HEAD'} ({head[:12]}..{tip.hex()[:12]}):")
        for new, subject in landed:  # the agent's subjects, made safe for a terminal
            ui.echo(f"  {new.hex()[:7]} {subject}")
        if where is None:
            ui.say("note: HEAD is detached; the commits are on HEAD only: `git switch -c "
                   "NAME` keeps them on a branch")
    else:
        ui.echo("nothing to land: your branch already has these changes")
    if take is None:
        ui.say(f"session {s.name!r} is running: its files were left alone; apply again after "
               "it ends to drop what was landed from it")
    ui.finished_then_act_on(held, "apply")
    return 0
