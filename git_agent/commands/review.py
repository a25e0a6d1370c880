"""What a session changed: the file list base..agent/SESSION with risks, and `git agent review`."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pygit2

from git_agent import proc, session, ui
from git_agent.errors import GitAgentError, UsageError
from git_agent.mergeback import risks
from git_agent.repo import Worktree, find_worktree

STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "modified"}
TAG = {"added": "NEW", "modified": "MODIFIED", "deleted": "DELETED"}


@dataclass(frozen=True)
class Change:
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
        """The path for humans and JSON: UTF-8, undecodable bytes as U+FFFD."""
        return self.path.decode("utf-8", errors="replace")

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


# --- sessions --------------------------------------------------------------------------------


def _ref_oid(worktree: Worktree, ref: str) -> str | None:
    out = proc.git("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", cwd=worktree.root,
                   check=False)
    return out.decode().strip() or None


def _captured_base(worktree: Worktree, head: str) -> str | None:
    out = proc.git("log", "-1", "--format=%(trailers:key=Agent-Base,valueonly)", head,
                   cwd=worktree.root, check=False)
    return out.decode().strip() or None


def find_session(worktree: Worktree, name: str | None) -> session.Session:
    """The named (default: current branch's) session; one clear error when it does not exist."""
    s = session.get(worktree, name or session.default_name(worktree))
    if not s.exists() and _ref_oid(worktree, s.branch) is None:
        known = ", ".join(x.name for x in session.list_sessions(worktree)) or "none"
        raise GitAgentError(f"no session {s.name!r} in this worktree (sessions: {known})")
    return s


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
    base, head = _ref_oid(worktree, s.base_ref), _ref_oid(worktree, s.branch)
    running = s.is_running()
    # a run that was killed before its capture leaves the base ref ahead of the branch
    stale = head is not None and not running and _captured_base(worktree, head) != base
    if live and base is not None and (running or head is None or stale) and s.upper.is_dir():
        if running:
            ui.say(f"session {s.name!r} is running: capturing its current state first")
        capture_now(worktree, s, base=base,
                    reason="live view of the running session" if running
                    else "catching up after an interrupted run")
        head = _ref_oid(worktree, s.branch)
    if head is None and not running and s.exists():
        raise NothingCaptured(f"session {s.name!r} has no changes")
    if base is None and running:
        raise GitAgentError(f"session {s.name!r} is in its first run and its base is recorded "
                            "when that ends; review or apply it then")
    if base is None:
        raise GitAgentError(
            f"session {s.name!r} has no base ({s.base_ref} is missing); "
            f"`git agent drop {s.name}` and run again"
        )
    if head is None:
        raise GitAgentError(f"session {s.name!r} has no captured changes (no branch "
                            f"{s.branch.removeprefix('refs/heads/')})")
    return View(worktree=worktree, session=s, base=base, head=head)


# --- the change list -------------------------------------------------------------------------


def _raw_changes(view: View) -> list[Change]:
    out = proc.git("diff-tree", "-r", "-z", "--no-renames", "--raw", view.base, view.head,
                   cwd=view.worktree.root)
    fields = out.split(b"\0")
    changes: list[Change] = []
    for i in range(0, len(fields) - 1, 2):
        meta, path = fields[i], fields[i + 1]
        if not meta.startswith(b":"):
            break
        old_mode, new_mode, old_oid, new_oid, letter = meta[1:].decode().split()
        status = STATUS.get(letter[0])
        if status is None:  # U / X cannot happen between two trees
            raise GitAgentError(f"unexpected change {letter} for {path!r}")
        changes.append(Change(
            path=path, status=status, old_mode=int(old_mode, 8), new_mode=int(new_mode, 8),
            old_oid=None if status == "added" else old_oid,
            new_oid=None if status == "deleted" else new_oid,
        ))
    return changes


def _blob(repo: pygit2.Repository, oid: str | None, mode: int) -> bytes | None:
    if oid is None or mode == risks.MODE_GITLINK:
        return None
    obj = repo.get(oid)
    return obj.data if isinstance(obj, pygit2.Blob) else None


def _with_risks(repo: pygit2.Repository, c: Change) -> Change:
    new = _blob(repo, c.new_oid, c.new_mode)
    name = c.path.rsplit(b"/", 1)[-1].lower()
    old = _blob(repo, c.old_oid, c.old_mode) if name == b"package.json" else None
    found = risks.assess(path=c.name, old_mode=c.old_mode, new_mode=c.new_mode, old_data=old,
                         new_data=new)
    return Change(c.path, c.status, c.old_mode, c.new_mode, c.old_oid, c.new_oid, tuple(found))


def repo_of(worktree: Worktree) -> pygit2.Repository:
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


def changes(view: View, *, paths: Sequence[str] = ()) -> list[Change]:
    """The session's changes in git's diff order, limited to paths (files or directories).

    A path that matches none of the changes is an error, so a typo never reads as "nothing".
    """
    all_changes = _raw_changes(view)
    specs = to_repo_paths(view.worktree, paths)
    for raw, spec in zip(paths, specs, strict=True):
        if not any(_matches(c.path, spec) for c in all_changes):
            raise UsageError(f"{raw}: not among the changes of session {view.session.name!r}")
    picked = [c for c in all_changes if not specs or any(_matches(c.path, s) for s in specs)]
    repo = repo_of(view.worktree)
    return [_with_risks(repo, c) for c in picked]


# --- git agent review ------------------------------------------------------------------------


def to_json(view: View, files: Sequence[Change]) -> dict[str, Any]:
    return {
        "session": view.session.name,
        "branch": view.session.branch.removeprefix("refs/heads/"),
        "base": view.base,
        "head": view.head,
        "files": [c.to_json() for c in files],
    }


def pathspecs(worktree: Worktree, paths: Sequence[str]) -> list[str]:
    """Literal git pathspecs from the worktree root for command-line paths ([] for everything)."""
    specs = to_repo_paths(worktree, paths)
    if any(not s for s in specs):
        return []
    return [":(top,literal)" + os.fsdecode(s) for s in specs]


def _numstat(view: View, specs: Sequence[str]) -> tuple[int, int]:
    out = proc.git("diff-tree", "-r", "-z", "--no-renames", "--numstat", view.base, view.head,
                   "--", *specs, cwd=view.worktree.root)
    plus = minus = 0
    for rec in out.split(b"\0"):
        parts = rec.split(b"\t")
        if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
            plus, minus = plus + int(parts[0]), minus + int(parts[1])
    return plus, minus


def summary(view: View, files: Sequence[Change], specs: Sequence[str], *, color: bool) -> str:
    """Counts, then every risk with its one-line reason."""
    n = {s: sum(c.status == s for c in files) for s in ("added", "modified", "deleted")}
    plus, minus = _numstat(view, specs)
    lines = [
        ui.paint(f"session {view.session.name} ({view.session.branch.removeprefix('refs/heads/')}"
                 f", base {view.base[:12]}, head {view.head[:12]})", ui.BOLD, color=color),
        f"{len(files)} file{'s' if len(files) != 1 else ''} changed: {n['added']} added, "
        f"{n['modified']} modified, {n['deleted']} deleted; "
        f"{ui.paint(f'+{plus}', ui.GREEN, color=color)} "
        f"{ui.paint(f'-{minus}', ui.RED, color=color)} lines",
    ]
    risky = [c for c in files if c.risks]
    if risky:
        lines.append(ui.paint(f"{len(risky)} risky file{'s' if len(risky) != 1 else ''} "
                              "(can run code or change behaviour outside the sandbox):",
                              ui.YELLOW, color=color))
        for c in risky:
            for r in c.risks:
                lines.append(f"  {ui.paint('!', ui.RED, color=color)} {c.name}: {r}")
    else:
        lines.append("no risky files")
    return "\n".join(lines) + "\n\n"


def diff_argv(view: View, specs: Sequence[str], *, color: bool, stat: bool) -> list[str]:
    """git diff of base..head for these files, raw (no textconv, no external diff)."""
    return [
        "git", "diff", "--no-ext-diff", "--no-textconv", "--no-renames",
        f"--color={'always' if color else 'never'}", *(["--stat"] if stat else []),
        view.base, view.head, "--", *specs,
    ]


def render(view: View, files: Sequence[Change], specs: Sequence[str], *, color: bool,
           stat: bool) -> bytes:
    text = summary(view, files, specs, color=color).encode("utf-8", "surrogateescape")
    return text + proc.run(diff_argv(view, specs, color=color, stat=stat),
                           cwd=view.worktree.root, env=proc.no_git_env()).stdout


def main(*, session_name: str | None, stat: bool, json_out: bool, paths: Sequence[str]) -> int:
    worktree = find_worktree()
    try:
        view = open_view(worktree, session_name)
    except NothingCaptured as e:
        ui.say(str(e))
        return 0
    files = changes(view, paths=paths)
    if json_out:
        ui.write_stdout((json.dumps(to_json(view, files), indent=2) + "\n").encode())
        return 0
    if not files:
        ui.say(f"session {view.session.name!r} has no changes")
        return 0
    color = ui.use_color(cwd=worktree.root)
    specs = pathspecs(worktree, paths)
    ui.page(render(view, files, specs, color=color, stat=stat), cwd=worktree.root)
    return 0
