"""The base: the state the agent starts from, as a commit (HEAD, or HEAD + uncommitted work).

Runs in a background thread while the sandbox starts: only subprocesses, no shared state.
The user's index, HEAD and worktree are never written: `git add -A` runs against a temporary
copy of the index (so git's stat cache is reused and only changed files are hashed).

Hidden paths (--hide) are never read: `git add` is told to leave them out (`:(exclude)`), so
their content reaches no object, no index and no base commit the agent can read through
.git; the base keeps what the index already had for them (a tracked file's staged or committed
version, already in the object store; nothing for an untracked one). A file git agent cannot
read (a root-owned 0600 file in a user's worktree) is left out the same way, with a warning.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from git_agent import beneath, proc, ui
from git_agent.errors import GitAgentError
from git_agent.repo import Worktree
from git_agent.session import Session

ZERO_OID = "0" * 40
FALLBACK_NAME = "git-agent"
FALLBACK_EMAIL = "git-agent@localhost"


@dataclass(frozen=True)
class Base:
    oid: str  # the commit the agent starts from
    head: str | None  # HEAD when the snapshot was taken (None: unborn)
    clean: bool  # True when oid == head: nothing uncommitted
    warnings: tuple[str, ...] = ()  # files left out of the base (unreadable), for capture



def _identity_env(worktree: Worktree) -> dict[str, str]:
    """A fixed identity when the user has none (commit-tree would fail without one)."""
    p = proc.run(["git", "var", "GIT_COMMITTER_IDENT"], cwd=worktree.root, check=False)
    if p.returncode == 0:
        return {}
    return {"GIT_AUTHOR_NAME": FALLBACK_NAME, "GIT_AUTHOR_EMAIL": FALLBACK_EMAIL,
            "GIT_COMMITTER_NAME": FALLBACK_NAME, "GIT_COMMITTER_EMAIL": FALLBACK_EMAIL}


def _exclude(rel: bytes) -> str:
    """A pathspec leaving the path rel (a file, or a dir and all below) out."""
    return ":(exclude,literal)" + os.fsdecode(rel)


def _hidden(root: Path, hide: Sequence[Path]) -> list[bytes]:
    """The hidden paths relative to root as git must name them (no symlink on the way: git
    refuses a pathspec beyond one), each also as the file it resolves to (the mount inside
    masks that file, so must the snapshot)."""
    out: list[bytes] = []
    real_root = Path(os.path.realpath(root))
    for p in hide:
        for cand in (Path(os.path.realpath(p.parent)) / p.name, Path(os.path.realpath(p))):
            if cand == real_root or not cand.is_relative_to(real_root):
                continue
            rel = os.fsencode(cand.relative_to(real_root))
            if rel not in out and rel.split(b"/", 1)[0] != b".git":
                out.append(rel)
    return out


def _unreadable(worktree: Worktree, env: dict[str, str], skip: list[str]) -> list[bytes]:
    """Untracked or changed files `git add` would have to read and cannot open."""
    out = []
    listed = proc.git("ls-files", "-z", "-o", "-m", "--exclude-standard", "--", ".", *skip,
                      cwd=worktree.root, env=env)
    root = os.fsencode(worktree.root)
    for rel in sorted(set(listed.split(b"\0")) - {b""}):
        try:
            fd = os.open(os.path.join(root, rel), beneath.FILE_FLAGS)
        except PermissionError:
            out.append(rel)
            continue
        except OSError:
            continue  # a symlink (git reads only its target), gone meanwhile
        os.close(fd)
    return out


_LOCKED_DIR = re.compile(rb"^warning: could not open directory '(.*)/': Permission denied$",
                         re.MULTILINE)


def _add_all(worktree: Worktree, env: dict[str, str], hidden: list[bytes]) -> list[str]:
    """`git add -A` into the temporary index, leaving out the hidden paths and, when git
    fails on them, files it cannot read. Returns a warning per file left out that way, and
    per directory git could not open (git leaves those out itself, with a warning)."""
    skip = [_exclude(h) for h in hidden]
    left_out: list[bytes] = []
    while True:
        try:
            p = proc.run(["git", "add", "-A", "--", ".", *skip], cwd=worktree.root,
                         env=proc.no_git_env({**env, "LC_ALL": "C"}))  # parsed below
        except proc.CalledProcessError as e:
            more = _unreadable(worktree, env, skip)
            if not more:
                raise GitAgentError(
                    f"cannot snapshot the worktree ({e}); fix the file git complains about, "
                    "or commit/stash your work first"
                ) from e
            left_out += more
            skip += [_exclude(rel) for rel in more]
            continue
        left_out += [m + b"/" for m in _LOCKED_DIR.findall(p.stderr or b"")]
        return [f"left {ui.quote_path(rel)} out of the base: you cannot read it (nor can the agent)"
                for rel in sorted(set(left_out))]


def snapshot(*, worktree: Worktree, scratch: Path | None = None,
             hide: Sequence[Path] = ()) -> Base:
    """Record the worktree as a commit: HEAD when clean, else a commit on top of HEAD (none
    when unborn) holding tracked changes and untracked, non-ignored files exactly; the
    hidden paths (absolute, inside the worktree) as the index has them, unread.

    The temporary index lives in `scratch` (the session folder) when given: a run that exits
    without waiting for the snapshot leaves it there, and the next snapshot removes it."""
    head = worktree.head_oid()
    hidden = _hidden(worktree.root, hide)
    if scratch is not None:
        for old in scratch.glob("base-index-*"):
            shutil.rmtree(old, ignore_errors=True)
    # not TemporaryDirectory: its clean-up at interpreter exit would race with a git still
    # writing there when run exits without waiting for the snapshot (the next one cleans up)
    tmp = tempfile.mkdtemp(prefix="base-index-", dir=scratch)
    try:
        index = os.path.join(tmp, "index")
        real = worktree.git_dir / "index"
        try:
            shutil.copy2(real, index)  # keep its mtime: git's racy-clean check depends on it
        except FileNotFoundError:
            if head is not None:
                # no index but a HEAD: start from HEAD's tree (read-tree), then add -A
                proc.git("read-tree", head, cwd=worktree.root, env={"GIT_INDEX_FILE": index})
        env = {"GIT_INDEX_FILE": index}
        warnings = _add_all(worktree, env, hidden)
        tree = proc.git("write-tree", cwd=worktree.root, env=env).decode().strip()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if head is not None:
        head_tree = proc.git("rev-parse", f"{head}^{{tree}}", cwd=worktree.root).decode().strip()
        if head_tree == tree:
            return Base(oid=head, head=head, clean=True, warnings=tuple(warnings))
    parents = ["-p", head] if head else []
    # dated like HEAD: the same uncommitted state gives the same base commit, run after run
    date = (proc.git("show", "-s", "--format=%cd", "--date=raw", head, cwd=worktree.root)
            .decode().strip() if head else "@0 +0000")
    env = {**_identity_env(worktree), "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    msg = (f"git agent: base snapshot of uncommitted work on {head[:12]}\n" if head
           else "git agent: base snapshot (unborn branch)\n")
    oid = proc.git("commit-tree", tree, *parents, cwd=worktree.root, input=msg.encode(),
                   env=env).decode().strip()
    return Base(oid=oid, head=head, clean=False, warnings=tuple(warnings))


def keep(*, worktree: Worktree, session: Session, base: Base, old: str | None = None) -> None:
    """Point the session's base ref at base (compare-and-swap against old, default: its
    current value), so the snapshot commit survives gc and review can find it."""
    if old is None:
        got = proc.git("rev-parse", "-q", "--verify", session.base_ref, cwd=worktree.root,
                       check=False).decode().strip()
        old = got or ZERO_OID
    try:
        proc.git("update-ref", "-m", f"git agent: base of {session.name}", session.base_ref,
                 base.oid, old, cwd=worktree.root)
    except proc.CalledProcessError as e:
        raise GitAgentError(
            f"{session.base_ref} changed while it was being set ({e}); is another git agent "
            "starting this session?"
        ) from e


def read(*, worktree: Worktree, session: Session) -> str | None:
    """The session's recorded base commit, or None."""
    got = proc.git("rev-parse", "-q", "--verify", f"{session.base_ref}^{{commit}}",
                   cwd=worktree.root, check=False).decode().strip()
    return got or None
