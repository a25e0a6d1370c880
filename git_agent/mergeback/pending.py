"""agent/<session> after an apply: only the work still pending, the old branch on record.

After apply took paths out of the session, agent/S is rebuilt on its base: the agent's commits
(and captures) that still change a pending path are copied, each keeping only its pending
paths (author and message kept, a note where paths were left out); the ones wholly applied or
rejected are gone from it. Nothing pending: agent/S is its base. What agent/S was goes on
record first: refs/agent-history/S is a chain of record commits, first parent the branch
before that apply, second parent the record before (`git log refs/agent-history/S^`);
the branch's reflog has each step too. `git agent drop` removes the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from git_agent import proc
from git_agent.capture import rewrite
from git_agent.capture.snapshot import ZERO_OID
from git_agent.capture.treediff import diff_trees
from git_agent.errors import GitAgentError
from git_agent.gittree import Entry
from git_agent.mergeback import partial_base
from git_agent.mergeback.view import FileChange, View


def settle(view: View, before: str, *, gone: dict[bytes, Entry | None] | None = None
           ) -> str | None:
    """Rewrite agent/S to its pending work; `before` is its tip when apply read it. The
    pending tree is the branch's tip now (apply recaptured the session), or, for a session
    with no upper dir (known only by its refs), `before`'s tree with the paths of `gone` put
    back to their base version. Returns the new tip (None: nothing changed)."""
    wt, s = view.worktree, view.session
    now = wt.resolve(s.branch)
    if now is None or (gone is None and now == before):
        return None
    repo, odb = rewrite.new_odb(wt)
    base = bytes.fromhex(view.base)
    base_tree = rewrite.read_commit(odb, base).tree
    if gone is None:
        target = rewrite.read_commit(odb, bytes.fromhex(now)).tree
    else:
        old_tree = rewrite.read_commit(odb, bytes.fromhex(before)).tree
        target = rewrite.edit_tree(odb, old_tree, gone) or odb.write_tree({})
    who = rewrite.committer(wt)
    try:
        if target == base_tree:
            tip = base
        else:
            pending = {p for _, p in diff_trees(odb, base_tree, target)}
            # (a branch not above its base: no commit of it is copied, one holds the rest)
            chain = (rewrite.unrecorded(wt, before, partial_base.known(view))
                     if rewrite.above_base(repo, odb, view.base, before) else [])
            tip, tree = rewrite.replay(
                odb, onto=base, commits=chain, who=who, keep=pending.__contains__,
                note=lambda n: (f"(git agent: {n} of this commit's paths "
                                f"{'were' if n != 1 else 'was'} applied or rejected; only the "
                                "pending ones are left here)").encode())
            if tree != target:  # the session holds more than its commits said: one on top
                msg = (f"git agent: pending work of session {s.name}\n\n"
                       f"Agent-Session: {s.name}\nAgent-Base: {view.base}\n").encode()
                tip = rewrite.write_commit(odb, tree=target, parents=[tip], author=who,
                                           committer=who, message=msg)
        hist = wt.resolve(rewrite.history_ref(s.name))
        record = rewrite.write_commit(
            odb, tree=rewrite.read_commit(odb, bytes.fromhex(before)).tree,
            parents=[bytes.fromhex(before), *([bytes.fromhex(hist)] if hist else [])],
            author=who, committer=who,
            message=(f"git agent: {s.branch_name} before an apply\n\n{s.branch_name} was "
                     f"{before}; it now holds only the work still pending.\n").encode())
        odb.out.finish()
    except BaseException:
        odb.out.abort()
        raise
    # all refs or none; compare-and-swap from what was read. A session known by its branch
    # alone gets the base ref its trailer named (open_view found it)
    base_line = (f"create {s.base_ref} {view.base}\n" if wt.resolve(s.base_ref) is None
                 else "")
    # no lock guards a session known by its refs: the swap is from the tip apply read, so
    # work that reached the branch meanwhile (a fetch) is never overwritten
    old = now if gone is None else before
    try:
        proc.git("update-ref", "--stdin", "-m", f"git agent: apply {s.name}: pending work only",
                 input=(f"start\nupdate {rewrite.history_ref(s.name)} {record.hex()} "
                        f"{hist or ZERO_OID}\nupdate {s.branch} {tip.hex()} {old}\n{base_line}"
                        "prepare\ncommit\n").encode(), cwd=wt.root)
    except proc.CalledProcessError as e:
        if wt.resolve(s.branch) == old:
            raise
        raise GitAgentError(f"{s.branch_name} moved while apply ran (it was {before[:12]}); it "
                            "was left as it is, with the newer work") from e
    if s.meta_path.exists():
        s.update_meta(capture_base=view.base, capture_tip=tip.hex())
    del repo
    return tip.hex()


def refs_only_take(view: View, done: Sequence[FileChange]) -> Callable[[], list[bytes]]:
    """apply's `take` for a session known only by its refs (no upper dir to take paths out
    of): agent/S loses the applied and rejected paths (done), put back to their base."""
    gone: dict[bytes, Entry | None] = {
        c.path: None if c.old_oid is None else (c.old_mode, bytes.fromhex(c.old_oid))
        for c in done}

    def take() -> list[bytes]:
        settle(view, view.head, gone=gone)
        return []

    return take
