"""Capture: turn a session's overlay upper into a commit on agent/<session>.

The tree is the base tree with the upper's changes applied, rewriting only the touched
subtrees (cost: O(paths changed); the real worktree is never walked). Commits the agent made
inside the sandbox are imported as data from the upper's object store. The branch moves last,
by compare-and-swap, so a capture killed at any point leaves it old or complete.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from dataclasses import dataclass, field

import pygit2

from git_agent import beneath, proc, ui
from git_agent.capture import rewrite
from git_agent.capture.sandboxgit import (
    Importer,
    SandboxObjects,
    Unimportable,
    agent_head,
    commit_parents,
)
from git_agent.capture.snapshot import FALLBACK_EMAIL, FALLBACK_NAME, ZERO_OID, Base, keep
from git_agent.capture.snapshot import read as base_ref
from git_agent.capture.tree import Odb, TreeBuilder, read_upper
from git_agent.capture.treediff import diff_trees
from git_agent.errors import GitAgentError
from git_agent.repo import Worktree
from git_agent.session import Session


@dataclass
class CaptureResult:
    commit: str | None  # the branch tip after capture (None: nothing captured, no branch)
    unchanged: bool  # no new commit: same tree as the last capture of this base
    added: int = 0  # paths, relative to the base
    modified: int = 0
    deleted: int = 0
    imported: int = 0  # the agent's own commits brought into the repository
    ignored: int = 0  # new paths left in the upper by the ignore rules
    squashed: bool = False  # the agent's history did not descend from the base
    warnings: list[str] = field(default_factory=list)
    summary: str = ""


def _identity(repo: pygit2.Repository) -> tuple[str, str]:
    cfg = repo.config

    def get(key: str) -> str | None:
        try:
            v = cfg[key]
        except (KeyError, ValueError):
            return None
        return str(v) if v else None

    name = get("agent.authorName") or get("user.name") or FALLBACK_NAME
    email = get("agent.authorEmail") or get("user.email") or FALLBACK_EMAIL
    return name, email


def _when(var: str) -> bytes:
    v = os.environ.get(var, "")
    if re.fullmatch(r"@?\d+ [+-]\d{4}", v):
        return v.lstrip("@").encode()
    now = time.time()
    off = time.localtime(now).tm_gmtoff // 60
    sign = "+" if off >= 0 else "-"
    return f"{int(now)} {sign}{abs(off) // 60:02d}{abs(off) % 60:02d}".encode()


def _clean(text: str) -> bytes:
    return re.sub(r"[<>\n\0]", "", text).strip().encode("utf-8", "backslashreplace")


def _write_commit(repo: pygit2.Repository, odb: Odb, *, tree: bytes, parents: list[bytes],
                  message: bytes) -> bytes:
    name, email = _identity(repo)
    who = b"%s <%s>" % (_clean(name), _clean(email))
    lines = [b"tree " + tree.hex().encode()]
    lines += [b"parent " + p.hex().encode() for p in parents]
    lines.append(b"author %s %s" % (who, _when("GIT_AUTHOR_DATE")))
    lines.append(b"committer %s %s" % (who, _when("GIT_COMMITTER_DATE")))
    return odb.store(pygit2.GIT_OBJECT_COMMIT, b"\n".join(lines) + b"\n\n" + message)


def _message(*, session: Session, base: str, command: list[str] | None,
             exit_status: int | None, changes: list[tuple[str, bytes]], note: str | None,
             reason: str | None = None) -> bytes:
    cmd = shlex.join(command) if command else ""
    short = cmd if len(cmd) <= 60 else cmd[:57] + "..."
    subject = "git agent: " + (short or reason or "capture")
    if exit_status is not None:
        subject += f" (exit {exit_status})"
    body = [f"{s} {ui.quote_path(p)}" for s, p in changes[:50]]
    if len(changes) > 50:
        body.append(f"... and {len(changes) - 50} more")
    if note:
        body += ["", note]
    trailers = [f"Agent-Session: {session.name}", f"Agent-Base: {base}"]
    if cmd:
        trailers.append("Agent-Command: " + cmd.replace("\n", "\\n"))
    if exit_status is not None:
        trailers.append(f"Agent-Exit-Status: {exit_status}")
    text = "\n".join([subject.replace("\n", " "), "", *body, "", *trailers]) + "\n"
    return text.encode("utf-8", "backslashreplace")


def _trailer(repo: pygit2.Repository, oid: bytes, key: bytes) -> str | None:
    typ, data = repo.odb.read(pygit2.Oid(raw=oid))
    if typ != pygit2.GIT_OBJECT_COMMIT:
        return None
    m = re.search(rb"^" + key + rb": *([0-9a-f]{40})$", bytes(data), re.M)
    return m.group(1).decode() if m else None


def _tree_of(repo: pygit2.Repository, oid: bytes) -> bytes:
    return commit_parents(bytes(repo.odb.read(pygit2.Oid(raw=oid))[1]))[0]


def _anchor_of(repo: pygit2.Repository, base: str) -> str | None:
    """The HEAD a base snapshot was made on (the base itself when it is a plain commit)."""
    data = bytes(repo.odb.read(base)[1])
    _, parents = commit_parents(data)
    if b"\n\ngit agent: base snapshot" in data:
        return parents[0].hex() if parents else None
    return base


@dataclass(frozen=True)
class AgentHistory:
    """What step 3 made of the commits the agent made inside the sandbox."""

    tip: bytes | None = None  # the agent's HEAD, imported (None: nothing to keep)
    imported: int = 0  # commits brought into the repository
    squashed: str | None = None  # why the history was not kept (the final state is one commit)


def import_agent_commits(repo: pygit2.Repository, *, worktree: Worktree, session: Session,
                         anchor: str | None, recorded: str | None = None) -> AgentHistory:
    """Step 3: the agent's own commits, imported when they descend from the base's HEAD, or
    from commits an apply took already (`recorded`: refs/agent-history/S); otherwise
    (rewritten history, a store or tree git would refuse) the reason to squash."""
    head = agent_head(worktree=worktree, session=session)
    if head is None or head == anchor:
        return AgentHistory()
    try:
        sandbox = SandboxObjects.of(worktree=worktree, session=session)
    except Unimportable as e:
        return AgentHistory(squashed=str(e))
    try:
        imp = Importer(repo, sandbox)
        new, boundary = imp.commits(bytes.fromhex(head))
        if anchor is not None and not any(
                b.hex() == anchor or repo.descendant_of(b.hex(), anchor)
                or rewrite.reachable(repo, b.hex(), [recorded]) for b in boundary):
            return AgentHistory(squashed="does not descend from the base")
        for c in reversed(new):
            imp.queue(pygit2.GIT_OBJECT_COMMIT, c)
        imp.write()
    except (Unimportable, KeyError, pygit2.GitError) as e:
        return AgentHistory(squashed=str(e))
    finally:
        sandbox.close()
    return AgentHistory(tip=bytes.fromhex(head), imported=len(new))


def _parent(repo: pygit2.Repository, *, prev: bytes | None, same_base: bool, base: bytes,
            agent: AgentHistory) -> bytes:
    """What the new commit goes on: the last capture (same base, and it holds the agent's
    tip), else the agent's tip, else the base."""
    keep_prev = same_base and prev is not None
    if agent.tip is None:
        return prev if keep_prev and prev is not None else base
    if keep_prev and prev is not None and (
            prev == agent.tip or repo.descendant_of(prev.hex(), agent.tip.hex())):
        return prev
    return agent.tip


def _after_apply(c: _Capture, agent: AgentHistory, parent: bytes) -> bytes:
    """Once an apply rewrote agent/S to the pending work (refs/agent-history/S keeps what it
    was), the agent's commits that record holds are not brought back as pending; the ones it
    made since are copied onto the branch (author and message kept)."""
    if agent.tip is None:
        return parent
    hist = c.recorded
    if hist is None:
        return parent
    onto = c.prev if c.prev is not None and c.same_base() else c.base_raw
    if rewrite.reachable(c.repo, agent.tip.hex(), [hist, onto.hex()]):
        return onto
    new = rewrite.unrecorded(c.worktree, agent.tip.hex(), [hist, onto.hex(), c.base_oid])
    tip, _ = rewrite.replay(c.odb, onto=onto, commits=new, who=rewrite.committer(c.worktree))
    c.odb.out.finish()  # the commit on top reads its parent back
    return tip


def _recorded_head(c: _Capture) -> bool:
    """Does the record of an earlier apply (refs/agent-history/S) hold the agent's HEAD
    inside? Then its history is taken already (after `apply --commit` your branch has copies,
    which the agent's own line does not descend from): nothing to import, nothing squashed."""
    hist = c.recorded
    head = agent_head(worktree=c.worktree, session=c.session) if hist is not None else None
    if head is None or hist is None:
        return False
    try:
        return rewrite.reachable(c.repo, head, [hist])
    except (KeyError, ValueError, pygit2.GitError):
        return False  # not in this repository: never imported


class _Capture:
    """One capture of a session: the steps, in order, in `run`."""

    def __init__(self, *, worktree: Worktree, session: Session, base: Base | str):
        self.worktree = worktree
        self.session = session
        self.repo = pygit2.Repository(str(worktree.root))
        self.base_oid = base.oid if isinstance(base, Base) else base
        self.anchor = base.head if isinstance(base, Base) else _anchor_of(self.repo,
                                                                          self.base_oid)
        self.base_raw = bytes.fromhex(self.base_oid)
        self.warnings: list[str] = list(base.warnings) if isinstance(base, Base) else []
        ref = self.repo.references.get(session.branch)
        self.prev = bytes.fromhex(str(ref.resolve().target)) if ref is not None else None
        rec = self.repo.references.get(rewrite.history_ref(session.name))
        # what agent/S was before each apply (pending.py): the agent's commits it holds are taken
        self.recorded = str(rec.resolve().target) if rec is not None else None
        self.odb = Odb(self.repo, worktree.common_dir / "objects")

    def build_tree(self) -> tuple[bytes, int]:
        """Steps 1 and 2: the upper's changes on the base tree; (tree, paths ignored)."""
        changes, nfiles = read_upper(self.session.upper, self.warnings)
        progress = ui.Progress("capturing", nfiles)
        upper_fd = beneath.open_root(self.session.upper)
        builder = TreeBuilder(odb=self.odb, worktree=self.worktree, upper_fd=upper_fd,
                           base_tree=_tree_of(self.repo, self.base_raw), changes=changes,
                           warnings=self.warnings,
                           prev_tree=(_tree_of(self.repo, self.prev)
                                      if self.prev is not None else None),
                           progress=progress)
        try:
            return builder.build(), builder.ignored
        finally:
            builder.close()
            os.close(upper_fd)
            progress.done()

    def same_base(self) -> bool:
        """Was the last capture on the branch made from this base?"""
        prev = self.prev
        if prev is None:
            return False
        meta = self.session.read_meta()
        return (prev == self.base_raw
                or _trailer(self.repo, prev, b"Agent-Base") == self.base_oid
                or (meta.capture_tip == prev.hex() and meta.capture_base == self.base_oid))

    def commit(self, *, tree: bytes, parent: bytes, note: str | None, command: list[str] | None,
               exit_status: int | None, reason: str | None
               ) -> tuple[bytes, list[tuple[str, bytes]]]:
        """Step 4: the commit of tree on parent (parent itself when nothing differs)."""
        changes = diff_trees(self.odb, _tree_of(self.repo, parent), tree)
        if not changes:
            return parent, changes
        msg = _message(session=self.session, base=self.base_oid, changes=changes, note=note,
                       command=command, exit_status=exit_status, reason=reason)
        return _write_commit(self.repo, self.odb, tree=tree, parents=[parent],
                             message=msg), changes

    def move_branch(self, new_tip: bytes) -> None:
        """Step 5: compare-and-swap the branch from the tip read at the start."""
        old = self.prev.hex() if self.prev is not None else ZERO_OID
        for attempt in range(3):
            try:
                proc.git("update-ref", "-m", f"git agent: capture {self.session.name}",
                         self.session.branch, new_tip.hex(), old, cwd=self.worktree.root)
                return
            except proc.CalledProcessError as e:
                # killed by a signal (a stray SIGTERM of the shell's `timeout`): git removed its
                # lock, the ref is as it was, and the same compare-and-swap is safe to try again
                if e.returncode < 0 and attempt < 2:
                    continue
                other = self.worktree.ref_in_the_way(self.session.branch)
                if other:
                    raise GitAgentError(f"cannot capture: git cannot create "
                                        f"{self.session.branch} while {other} exists (a ref "
                                        "cannot also be a folder of refs); rename that ref, "
                                        "then run the capture again") from e
                raise GitAgentError(f"{self.session.branch} moved while capturing ({e}); run "
                                    "the capture again") from e

    def record(self, commit: str) -> None:
        """The base ref and meta.json name what this capture was made from."""
        wt, s = self.worktree, self.session
        if base_ref(worktree=wt, session=s) != self.base_oid:
            keep(worktree=wt, session=s, base=Base(oid=self.base_oid, head=self.anchor,
                                                     clean=self.anchor == self.base_oid))
        if s.meta_path.exists():
            s.update_meta(capture_base=self.base_oid, capture_tip=commit,
                          captured_at=time.time())


def capture(*, worktree: Worktree, session: Session, base: Base | str,
            command: list[str] | None = None, exit_status: int | None = None,
            reason: str | None = None) -> CaptureResult:
    """Commit the session's upper onto session.branch; see the module docstring.

    `reason` names a capture that no agent run made (a live review, an apply)."""
    c = _Capture(worktree=worktree, session=session, base=base)
    try:
        tree, ignored = c.build_tree()
        agent = import_agent_commits(c.repo, worktree=worktree, session=session,
                                     anchor=c.anchor, recorded=c.recorded)
        note = None
        if agent.squashed is not None and _recorded_head(c):
            agent = AgentHistory()  # its commits were taken by an apply already: not squashed
        if agent.squashed is not None:
            note = f"The agent's own commits were not kept ({agent.squashed}): one commit."
            c.warnings.append(f"agent's history not imported ({agent.squashed}); captured its "
                              "final state as one commit")
        parent = _parent(c.repo, prev=c.prev, same_base=c.same_base(), base=c.base_raw,
                         agent=agent)
        parent = _after_apply(c, agent, parent)
        new_tip, changes = c.commit(tree=tree, parent=parent, note=note, command=command,
                                    exit_status=exit_status, reason=reason)
        c.odb.out.finish()  # every new object is in the repository before a ref points at it
    except BaseException:
        c.odb.out.abort()
        raise

    total = changes if parent == c.base_raw else diff_trees(
        c.odb, _tree_of(c.repo, c.base_raw), tree)
    counts = {s: sum(1 for k, _ in total if k == s) for s in "AMD"}
    result = CaptureResult(commit=new_tip.hex(), unchanged=False, added=counts["A"],
                           modified=counts["M"], deleted=counts["D"], imported=agent.imported,
                           ignored=ignored, squashed=agent.squashed is not None,
                           warnings=c.warnings)
    if new_tip == c.prev or (c.prev is None and new_tip == c.base_raw):
        result.unchanged = True
        result.commit = c.prev.hex() if c.prev is not None else None
    else:
        c.move_branch(new_tip)
    if result.commit is not None:
        c.record(result.commit)
    result.summary = _summary(session, result)
    return result


def _summary(session: Session, r: CaptureResult) -> str:
    if r.commit is None:
        return f"agent/{session.name}: nothing to capture (the session holds no changes)"
    holds = f"{r.added} added, {r.modified} modified, {r.deleted} deleted"
    if r.added + r.modified + r.deleted == 0:
        holds = "no changes against its base"
    parts = [holds]
    if r.imported:
        parts.append(f"{r.imported} agent commit{'s' if r.imported != 1 else ''} kept")
    if r.squashed:
        parts.append("agent history squashed")
    if r.ignored:
        parts.append(f"{r.ignored} ignored path{'s' if r.ignored != 1 else ''} left out")
    if r.unchanged:  # the counts are what the branch holds, not what this capture added
        return (f"agent/{session.name} already up to date (nothing new since its last "
                "capture); it holds " + ", ".join(parts))
    return f"agent/{session.name} {r.commit[:12]}: " + ", ".join(parts)
