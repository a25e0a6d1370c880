"""The session view: a session's base and head resolved, and its changes with their risks."""

from __future__ import annotations

import base64
import contextlib
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from git_agent import beneath, gittree, proc, session, ui
from git_agent.errors import GitAgentError, UsageError
from git_agent.mergeback import assessed, branch_state, diffstat, foreign, link_walk, risks
from git_agent.mergeback.user_config import GitConfig, read_config
from git_agent.repo import Worktree
from git_agent.session import identity

if TYPE_CHECKING:
    import pygit2

STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "modified"}
_STATUS_BYTE = {ord(k): v for k, v in STATUS.items()}  # diff-tree's letter, as a byte
TAG = {"added": "NEW", "modified": "MODIFIED", "deleted": "DELETED"}


@dataclass(frozen=True)
class FileChange:
    """One path that differs between the session's base and its branch."""

    path: bytes  # from the worktree root, exactly as git has it (no quoting)
    status: str  # added | modified | deleted (a mode-only or file<->symlink change is modified)
    old_mode: int  # git mode, 0 when absent
    new_mode: int
    old_oid: str | None
    new_oid: str | None
    risks: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The path for JSON: UTF-8, undecodable bytes as U+FFFD."""
        return self.path.decode("utf-8", errors="replace")

    @property
    def shown(self) -> str:
        """The path for a person: quoted as git does (core.quotePath)."""
        return ui.quote_path(self.path)

    @property
    def foreign(self) -> bool:
        """Would applying it make git find another repository (refused always)?"""
        return any(r.startswith(risks.FOREIGN_GIT) for r in self.risks)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.name,
            "status": self.status,
            "old_mode": f"{self.old_mode:06o}" if self.old_mode else None,
            "new_mode": f"{self.new_mode:06o}" if self.new_mode else None,
            "risks": list(self.risks),
        }
        if self.name.encode("utf-8", errors="surrogateescape") != self.path:
            d["path_base64"] = base64.b64encode(self.path).decode()
        return d


class NothingCaptured(GitAgentError):
    """The session exists but has never been captured: it has no changes."""


@dataclass(frozen=True)
class View:
    """A session with its base and head commits resolved."""

    worktree: Worktree
    session: session.Session
    base: str
    head: str
    config: GitConfig = field(default_factory=GitConfig)  # read once per review/apply


# --- sessions --------------------------------------------------------------------------------


def find_session(worktree: Worktree, name: str | None) -> session.Session:
    """The named (default: current branch's) session; one clear error when it does not exist."""
    s = session.get(worktree, name or session.default_name(worktree))
    if not s.exists() and worktree.resolve(s.branch) is None:
        known = ", ".join(x.name for x in session.list_sessions(worktree)) or "none"
        raise GitAgentError(f"no session {s.name!r} in this worktree (sessions: {known})")
    refuse_elsewhere(worktree, s)
    identity.check(worktree, s)  # a session of a repository that was here before
    return s


def refuse_elsewhere(worktree: Worktree, s: session.Session) -> None:
    """A session with no folder here whose folder is in another worktree's store is that
    worktree's (refs are shared, stores are not): never taken for one known by its refs."""
    if s.dir.exists():
        return
    path = session.owner_elsewhere(worktree, s.name)
    if path is not None:
        raise GitAgentError(
            f"session {s.name!r} is a session of the worktree "
            f"{ui.quote_path(os.fsencode(path))} (its branch is shared, its files are "
            "there): run git agent in that worktree")


def capture_now(worktree: Worktree, s: session.Session, *, base: str,
                reason: str = "live view of the running session") -> None:
    """Commit the session's current upper dir onto agent/SESSION, on the same base."""
    from git_agent.capture import commit as capture

    result = capture.capture(worktree=worktree, session=s, base=base, reason=reason)
    for w in result.warnings:
        ui.say(f"warning: {w}")


def open_view(worktree: Worktree, name: str | None, *, live: bool = True) -> View:
    """Resolve a session to base and head, capturing first when it runs (a live view)."""
    s = find_session(worktree, name)
    base, head = worktree.resolve(s.base_ref), worktree.resolve(s.branch)
    if base is None and head is not None and not s.exists():
        base = branch_state.trailer_base(worktree, head)  # fetched without its base ref
    running = s.is_running()
    # a run that was killed before its capture leaves the base ref ahead of the branch
    stale = head is not None and not running and branch_state.cut_short(worktree, s, base, head)
    if live and base is not None and (running or head is None or stale) and s.upper.is_dir():
        if running:
            ui.say(f"session {s.name!r} is running: capturing its current state first")
        capture_now(worktree, s, base=base,
                    reason="live view of the running session" if running
                    else "catching up after an interrupted run")
        head = worktree.resolve(s.branch)
    if head is None and not running and s.exists():
        raise NothingCaptured(f"session {s.name!r} has no changes")
    if base is None:
        raise GitAgentError(branch_state.no_base(s, running=running))
    if head is None:
        raise GitAgentError(f"session {s.name!r} has no captured changes (no branch "
                            f"{s.branch_name})")
    return View(worktree=worktree, session=s, base=base, head=head,
                config=read_config(worktree))


def files_changed(worktree: Worktree, base: str | None, head: str | None) -> int | None:
    """How many paths differ between base and head (None when either is missing)."""
    if base is None or head is None:
        return None
    out = proc.git("diff-tree", "-r", "-z", "--no-renames", "--name-only", base, head,
                   cwd=worktree.root, check=False)
    return sum(1 for p in out.split(b"\0") if p)


# --- the change list -------------------------------------------------------------------------


def _diff_tree(view: View) -> bytes:
    return proc.git("diff-tree", "-r", "-z", "--no-renames", "--raw", view.base, view.head,
                    cwd=view.worktree.root)


def _parse_raw(out: bytes) -> list[FileChange]:
    fields = out.split(b"\0")
    changes: list[FileChange] = []
    for meta, path in zip(fields[0:-1:2], fields[1::2], strict=True):  # kept bytes: fast
        if not meta.startswith(b":"):
            break
        old_mode, new_mode, old_oid, new_oid, letter = meta[1:].split()
        status = _STATUS_BYTE.get(letter[0])
        if status is None:  # U / X cannot happen between two trees
            raise GitAgentError(f"unexpected change {letter.decode(errors='replace')} for "
                                f"{ui.quote_path(path)}")
        changes.append(FileChange(
            path, status, int(old_mode, 8), int(new_mode, 8),
            None if status == "added" else old_oid.decode(),
            None if status == "deleted" else new_oid.decode(),
        ))
    return changes


def blob(repo: pygit2.Repository, oid: str | None, mode: int) -> bytes | None:
    """The bytes of a blob (a link's target), None when absent or a submodule."""
    import pygit2

    if oid is None or mode == gittree.GITLINK:
        return None
    try:  # the object database straight: no object wrapper, no abbreviated-id look-up
        kind, data = repo.odb.read(oid)
    except KeyError:
        return None
    return bytes(data) if kind == pygit2.GIT_OBJECT_BLOB else None


UNTRACKED = ("deletes a file of yours that is in no commit (untracked or uncommitted work: git "
             "cannot bring it back)")


def _assess(repo: pygit2.Repository, c: FileChange, config: GitConfig) -> tuple[str, ...]:
    """The risks of a change from its path, modes and blobs (what assessed.py may keep)."""
    new = blob(repo, c.new_oid, c.new_mode)
    name = c.path.rsplit(b"/", 1)[-1].lower()
    old = blob(repo, c.old_oid, c.old_mode) if name == b"package.json" else None
    return tuple(risks.assess(path=os.fsdecode(c.path), old_mode=c.old_mode,
                              new_mode=c.new_mode, old_data=old, new_data=new,
                              hooks=config.hooks, configs=config.configs,
                              named=config.named))


def _with_risks(c: FileChange, found: tuple[str, ...], first: str | None,
                untracked: bool) -> FileChange:
    if first is None and not untracked and not found:
        return c
    out = ((first,) if first is not None else ()) + found + ((UNTRACKED,) if untracked else ())
    return FileChange(c.path, c.status, c.old_mode, c.new_mode, c.old_oid, c.new_oid, out)


def assess_ahead(worktree: Worktree, s: session.Session) -> None:
    """Compute and keep the assessment of the session's base..branch, right after a capture
    or an import made the branch, so the next review or apply reads it (assessed.py). A
    failure here costs nothing but that: review computes it again."""
    base, head = worktree.resolve(s.base_ref), worktree.resolve(s.branch)
    if base is None or head is None or not s.dir.is_dir():
        return
    try:
        view = View(worktree=worktree, session=s, base=base, head=head,
                    config=read_config(worktree))
        _assessed(view, functools.cache(lambda: repo_of(worktree)))
    except (GitAgentError, OSError):
        return


def _assessed(view: View, repo: Callable[[], pygit2.Repository]) -> assessed.Assessment:
    """Every change and its risks (assess), from the session's stored assessment when it was
    made from the same commits, config and rules; else computed and stored."""
    want = assessed.key(view.base, view.head, view.config)
    kept = assessed.load(view.session.dir, want)
    if kept is not None:
        try:
            all_changes = _parse_raw(kept.raw)
        except (GitAgentError, ValueError):
            all_changes = []
        if len(all_changes) == len(kept.found):
            return assessed.Assessment(kept.raw, kept.found, kept.heads, all_changes, kept.counts)
    raw = _diff_tree(view)
    all_changes = _parse_raw(raw)
    found = [_assess(repo(), c, view.config) for c in all_changes]
    heads = foreign.head_dirs(repo(), view.head, _brought(all_changes))
    counts = None
    if view.session.dir.is_dir():  # counts only to keep; none when git may draw otherwise
        with contextlib.suppress(GitAgentError, KeyError):  # then review --stat asks git
            counts = diffstat.count(
                root=view.worktree.root, base=view.base, head=view.head,
                changes=[(c.path, c.old_oid, c.new_oid) for c in all_changes],
                size=lambda oid: 0 if oid is None else int(repo().odb.read_header(oid)[1]),
            ) if stat_usable(view, all_changes) else None
        assessed.store(view.session.dir, want, raw, found, heads, counts)
    return assessed.Assessment(raw, found, heads, all_changes, counts)


def stat_usable(view: View, changes: Sequence[FileChange]) -> bool:
    """Would git print --stat of these changes as stored counts draw it (diffstat.usable)?"""
    wt, cs = view.worktree, [(c.path, c.old_mode, c.new_mode) for c in changes]
    return diffstat.usable(keys=view.config.keys, root=wt.root, environ=os.environ, changes=cs,
                           git_dirs=[Path(wt.git_dir), Path(wt.common_dir)])


def _brought(all_changes: Sequence[FileChange]) -> list[bytes]:
    return [c.path for c in all_changes if c.new_oid is not None]


def _uncommitted(worktree: Worktree, open_repo: Callable[[], pygit2.Repository],
                 paths: Mapping[bytes, str | None]) -> set[bytes]:
    """The paths whose base version (paths maps each to its blob) is not what HEAD's tree has
    there: untracked files, and tracked ones with uncommitted changes (all on an unborn
    branch)."""
    import pygit2

    if not paths:
        return set()
    head = worktree.head_oid()
    if head is None:
        return set(paths)
    repo = open_repo()
    commit = repo.get(head)
    assert isinstance(commit, pygit2.Commit)
    trees: dict[bytes, pygit2.Tree | None] = {b"": commit.tree}

    def tree_at(d: bytes) -> pygit2.Tree | None:
        parts = d.split(b"/") if d else []
        here = trees[b""]
        for i in range(1, len(parts) + 1):  # each prefix looked up once (a cache, no recursion)
            key = b"/".join(parts[:i])
            if key not in trees:
                obj = None if here is None else _entry(repo, here, parts[i - 1])
                trees[key] = obj if isinstance(obj, pygit2.Tree) else None
            here = trees[key]
        return here

    out = set()
    for p in paths:
        parent, _, name = p.rpartition(b"/")
        here = tree_at(parent)
        obj = None if here is None else _entry(repo, here, name)
        if obj is None or not isinstance(obj, pygit2.Blob) or str(obj.id) != paths[p]:
            out.add(p)
    return out


def _entry(repo: pygit2.Repository, tree: pygit2.Tree, name: bytes) -> pygit2.Object | None:
    e = next((e for e in tree if e.raw_name == name), None)
    return None if e is None or e.filemode == gittree.GITLINK else repo.get(e.id)


def repo_of(worktree: Worktree) -> pygit2.Repository:
    import pygit2

    return pygit2.Repository(str(worktree.root))


def to_repo_paths(worktree: Worktree, paths: Sequence[str]) -> list[bytes]:
    """Turn command-line paths (relative to the cwd) into paths from the worktree root."""
    out: list[bytes] = []
    for p in paths:
        full = os.path.normpath(os.path.join(worktree.cwd, p))
        rel = os.path.relpath(full, worktree.root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            raise UsageError(f"{p}: outside the worktree {worktree.root}")
        out.append(b"" if rel == os.curdir else os.fsencode(rel))
    return out


def _matches(path: bytes, spec: bytes) -> bool:
    return not spec or path == spec or path.startswith(spec.rstrip(b"/") + b"/")


def changes(view: View, *, paths: Sequence[str] = ()) -> list[FileChange]:
    """The session's changes in git's diff order, limited to paths (files or directories).

    A path that matches none of the changes is an error, so a typo never reads as "nothing".
    """
    repo = functools.cache(lambda: repo_of(view.worktree))  # opened only when needed
    specs = to_repo_paths(view.worktree, paths)
    if specs and not view.session.dir.is_dir():  # nowhere to keep it: only what is asked
        all_changes, found, heads = _parse_raw(_diff_tree(view)), None, None
    else:
        got = _assessed(view, repo)
        all_changes, found, heads = got.changes, got.found, got.heads
    for raw, spec in zip(paths, specs, strict=True):
        if not any(_matches(c.path, spec) for c in all_changes):
            raise UsageError(f"{raw}: not among the changes of session {view.session.name!r}")
    picked = [i for i, c in enumerate(all_changes)
              if not specs or any(_matches(c.path, s) for s in specs)]
    deleted = {c.path: c.old_oid for i in picked if (c := all_changes[i]).new_oid is None}
    root_fd = beneath.open_root(view.worktree.root)
    try:
        shaped = foreign.gitdir_risks(root_fd, repo, view.head, _brought(all_changes), heads=heads)
        writes = {c.path: link_walk.written(None if c.new_oid is None else c.new_mode,
                                            functools.partial(blob, repo(), c.new_oid, c.new_mode))
                  for c in (all_changes[i] for i in picked)}
        out_links = link_walk.link_risks(root_fd, writes) if any(
            all_changes[i].new_mode == gittree.LINK for i in picked) else {}
    finally:
        os.close(root_fd)
    untracked = _uncommitted(view.worktree, repo, deleted) if deleted else set()
    out = []
    for i in picked:
        c = all_changes[i]
        kept = found[i] if found is not None else _assess(repo(), c, view.config)
        if c.path in out_links and not any(r.startswith("symlink") for r in kept):
            kept = (*kept, out_links[c.path])  # judged each time: it reads your worktree
        out.append(_with_risks(c, kept, shaped.get(c.path), c.path in untracked))
    return out


def pathspecs(worktree: Worktree, paths: Sequence[str]) -> list[str]:
    """Literal git pathspecs from the worktree root for command-line paths ([] for everything)."""
    specs = to_repo_paths(worktree, paths)
    if any(not s for s in specs):
        return []
    return [":(top,literal)" + os.fsdecode(s) for s in specs]


def diff_argv(view: View, specs: Sequence[str], *, color: bool, stat: bool) -> list[str]:
    """git diff of base..head for these files, raw (no textconv, no external diff), names
    quoted as ui.quote_path does (core.quotePath: octal for every byte from 0x80)."""
    return [
        "git", "-c", "core.quotePath=true", "diff", "--no-ext-diff", "--no-textconv",
        "--no-renames",
        f"--color={'always' if color else 'never'}", *(["--stat"] if stat else []),
        view.base, view.head, "--", *specs,
    ]
