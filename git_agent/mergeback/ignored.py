"""A session's ignored files: what its overlay holds that capture left out by the ignore rules.

Capture commits what git would commit (`git add -A`): files the ignore rules match stay in the
upper dir only (a built `dist/*.whl`, a `.venv/`). Here they are found again, by the same rules
(the .gitignore files as the agent left them: the upper's, else the worktree's; info/exclude;
core.excludesFile), as the files of the upper that the session's branch does not hold and that
the rules ignore. A spelling of .git is never one of them (capture leaves it out for safety).
Ignored files are in no commit: there is no base to merge with, so copying one out is all or
nothing per path, never a three-way merge."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

import pygit2

from git_agent import beneath, gittree
from git_agent.capture import ignore, overlay
from git_agent.errors import GitAgentError
from git_agent.repo import Worktree
from git_agent.session import Session

_MAX_IGNORE_FILE = 100 << 20


@dataclass(frozen=True)
class IgnoredFile:
    path: bytes  # from the worktree root
    mode: int  # git mode: BLOB, EXEC or LINK
    size: int


@dataclass(frozen=True)
class Line:
    """One line of the listing: a file, or a directory new and ignored as a whole."""

    path: bytes
    is_dir: bool
    size: int
    files: int


class _Tree:
    """Look-ups in a commit's tree by raw path (names stay bytes)."""

    def __init__(self, repo: pygit2.Repository, commit: str | None):
        self.repo = repo
        self._cache: dict[bytes, dict[bytes, gittree.Entry] | None] = {}
        root = None
        if commit is not None:
            c = repo.get(commit)
            if isinstance(c, pygit2.Commit):
                root = self._read(c.tree_id.raw)
        self._cache[b""] = root

    def _read(self, oid: bytes) -> dict[bytes, gittree.Entry] | None:
        typ, data = self.repo.odb.read(pygit2.Oid(raw=oid))
        return gittree.parse_tree(bytes(data)) if typ == pygit2.GIT_OBJECT_TREE else None

    def dir(self, d: bytes) -> dict[bytes, gittree.Entry] | None:
        if d not in self._cache:
            parent, _, name = d.rpartition(b"/")
            up = self.dir(parent)
            e = None if up is None else up.get(name)
            self._cache[d] = self._read(e[1]) if e is not None and e[0] == gittree.TREE \
                else None
        return self._cache[d]

    def has(self, path: bytes) -> bool:
        parent, _, name = path.rpartition(b"/")
        d = self.dir(parent)
        return d is not None and name in d


def _loader(upper_fd: int, lower_fd: int) -> ignore.Loader:
    def load(d: bytes) -> bytes | None:
        rel = d + b"/.gitignore" if d else b".gitignore"
        try:
            with beneath.parent(upper_fd, rel) as (fd, name):
                st = beneath.lstat(fd, name)
            in_upper = True
        except OSError:
            in_upper = False
        if in_upper:  # the agent's version (a whiteout or a link: none, as git reads it)
            return beneath.read_regular(upper_fd, rel, _MAX_IGNORE_FILE) \
                if stat.S_ISREG(st.st_mode) and st.st_size else None
        return beneath.read_regular(lower_fd, rel, _MAX_IGNORE_FILE)

    return load


def find(worktree: Worktree, session: Session, head: str | None) -> list[IgnoredFile]:
    """The ignored files and links of the session's upper, in path order."""
    if not session.upper.is_dir():
        return []
    repo = pygit2.Repository(str(worktree.root))
    tree = _Tree(repo, head)
    upper_fd = beneath.open_root(session.upper)
    lower_fd = beneath.open_root(worktree.root)
    try:
        rules = ignore.Rules(load_gitignore=_loader(upper_fd, lower_fd),
                             exclude=ignore.host_excludes(root=worktree.root,
                                                          common_dir=worktree.common_dir))
        out = []
        for ch in overlay.walk(session.upper):
            if ch.kind not in (overlay.Kind.FILE, overlay.Kind.SYMLINK):
                continue
            parts = ch.path.split(b"/")
            if any(gittree.is_dotgit(p) for p in parts) or tree.has(ch.path):
                continue
            if not rules.ignored(ch.path):
                continue
            mode = gittree.LINK if ch.kind is overlay.Kind.SYMLINK else (
                gittree.EXEC if ch.st.st_mode & 0o100 else gittree.BLOB)
            out.append(IgnoredFile(ch.path, mode, ch.st.st_size))
        return out
    finally:
        os.close(upper_fd)
        os.close(lower_fd)


def group(worktree: Worktree, files: Sequence[IgnoredFile]) -> list[Line]:
    """The listing: the files of a directory that your worktree does not have (wholly new,
    like a `.venv/` the agent built) as one line for the outermost such directory; the
    others one by one."""
    lower_fd = beneath.open_root(worktree.root)
    exists: dict[bytes, bool] = {}

    def in_worktree(d: bytes) -> bool:
        if d not in exists:
            try:
                with beneath.parent(lower_fd, d) as (fd, name):
                    beneath.lstat(fd, name)
                exists[d] = True
            except OSError:
                exists[d] = False
        return exists[d]

    lines: dict[bytes, Line] = {}
    try:
        for f in files:
            parts = f.path.split(b"/")
            top = next((b"/".join(parts[:i]) for i in range(1, len(parts))
                        if not in_worktree(b"/".join(parts[:i]))), None)
            key = top if top is not None else f.path
            old = lines.get(key)
            lines[key] = Line(key, top is not None, (old.size if old else 0) + f.size,
                              (old.files if old else 0) + 1)
    finally:
        os.close(lower_fd)
    return sorted(lines.values(), key=lambda x: x.path)


def pick(files: Sequence[IgnoredFile], specs: Sequence[bytes], shown: Sequence[str]
         ) -> list[IgnoredFile]:
    """The files at or below each spec (paths from the worktree root); a spec matching none
    is an error, so a typo never reads as nothing to copy."""
    out: dict[bytes, IgnoredFile] = {}
    for spec, raw in zip(specs, shown, strict=True):
        s = spec.rstrip(b"/")
        got = [f for f in files if not s or f.path == s or f.path.startswith(s + b"/")]
        if not got:
            raise GitAgentError(f"{raw}: not among the session's ignored files "
                                "(`git agent review --ignored` lists them)")
        out.update((f.path, f) for f in got)
    return sorted(out.values(), key=lambda f: f.path)


def human(size: int) -> str:
    """A size as people read it: 512 B, 3.4 kB, 48.2 MB (powers of 1000, as du --si)."""
    n = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{size} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
