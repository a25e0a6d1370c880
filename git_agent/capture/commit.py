"""Capture: turn a session's overlay upper into a commit on agent/<session>.

The tree is the base tree with the upper's changes applied, rewriting only the touched
subtrees (cost: O(paths changed); the real worktree is never walked). Commits the agent made
inside the sandbox are imported as data from the upper's object store. The branch moves last,
by compare-and-swap, so a capture killed at any point leaves it old or complete.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from git_agent import beneath, gittree, proc, ui
from git_agent.capture import ignore, overlay, pack
from git_agent.capture.overlay import Change, Kind
from git_agent.capture.sandboxgit import (
    Importer,
    SandboxObjects,
    Unimportable,
    agent_head,
    commit_parents,
)
from git_agent.capture.snapshot import FALLBACK_EMAIL, FALLBACK_NAME, ZERO_OID, Base, keep
from git_agent.capture.snapshot import read as base_ref
from git_agent.errors import GitAgentError
from git_agent.gittree import BLOB, EXEC, LINK, MAX_BLOB, TREE, Entry, parse_tree
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


def _join(a: bytes, b: bytes) -> bytes:
    return a + b"/" + b if a else b


def _sort_key(item: tuple[bytes, Entry]) -> bytes:
    return item[0] + b"/" if item[1][0] == TREE else item[0]


class _Odb:
    """Raw tree reading and writing: names stay bytes (pygit2's TreeBuilder wants UTF-8).

    New objects go to `out` (one pack past a few objects): readable by git after
    `out.finish()`; the trees written are kept here to be read back meanwhile."""

    def __init__(self, repo: pygit2.Repository, objects_dir: Path):
        self.odb = repo.odb
        self._trees: dict[bytes, dict[bytes, Entry]] = {}
        self.out = pack.Writer(objects_dir, self._write_loose)

    def _write_loose(self, typ: int, data: bytes) -> bytes:
        oid: bytes = self.odb.write(typ, data).raw
        return oid

    def store(self, typ: int, data: bytes, known: tuple[bytes | None, ...] = ()) -> bytes:
        """The object's id; written unless it is one of `known` (ids the repository has).

        Copy-ups and recaptures hold what the base or the last capture has at the same path:
        they are recognised by id and cost no zlib. (Asking the object store instead costs
        more than writing: libgit2 rescans the pack directory on every miss.)"""
        oid = pack.object_id(typ, data)
        if oid not in known:
            self.out.write(typ, data, oid)
        return oid

    def tree(self, oid: bytes) -> dict[bytes, Entry]:
        got = self._trees.get(oid)
        if got is None:
            typ, data = self.odb.read(pygit2.Oid(raw=oid))
            if typ != pygit2.GIT_OBJECT_TREE:
                raise GitAgentError(f"object {oid.hex()} is not a tree")
            got = parse_tree(data)
            self._trees[oid] = got
        return got

    def write_tree(self, entries: dict[bytes, Entry], known: tuple[bytes | None, ...] = ()
                   ) -> bytes:
        data = b"".join(b"%o %s\0%s" % (m, n, o)
                        for n, (m, o) in sorted(entries.items(), key=_sort_key))
        oid = self.store(pygit2.GIT_OBJECT_TREE, data, known)
        self._trees[oid] = dict(entries)
        return oid

    def write_blob(self, data: bytes, known: tuple[bytes | None, ...] = ()) -> bytes:
        return self.store(pygit2.GIT_OBJECT_BLOB, data, known)

    def lookup(self, root: bytes | None, path: bytes) -> Entry | None:
        entry: Entry | None = (TREE, root) if root is not None else None
        for part in path.split(b"/") if path else []:
            if entry is None or entry[0] != TREE:
                return None
            entry = self.tree(entry[1]).get(part)
        return entry


class _Node:
    """A directory of the upper: its changed children, and whether it hides the lower dir."""

    __slots__ = ("opaque", "redirect", "children")

    def __init__(self, opaque: bool = False, redirect: bytes | None = None):
        self.opaque = opaque
        self.redirect = redirect
        self.children: dict[bytes, _Node | Change] = {}


def read_upper(upper: Path, warnings: list[str]) -> tuple[_Node, int]:
    """Step 1: the upper as a tree of changes, and how many files and links it holds."""
    report = overlay.Walk()
    root = _Node()
    nodes: dict[bytes, _Node] = {b"": root}
    files = 0
    for ch in overlay.walk(upper, report=report):
        parent, _, name = ch.path.rpartition(b"/")
        holder = nodes.get(parent)
        if holder is None:
            continue
        if ch.kind in (Kind.DIR, Kind.OPAQUE_DIR):
            node = _Node(ch.kind is Kind.OPAQUE_DIR, ch.redirect)
            nodes[ch.path] = node
            holder.children[name] = node
        else:
            holder.children[name] = ch
            files += ch.kind in (Kind.FILE, Kind.SYMLINK)
    warnings.extend(report.warnings)
    return root, files


_MAX_IGNORE_FILE = 100 << 20  # git does not read a bigger .gitignore either


class _Frame:
    """One directory of the build in progress: its entries, and the children left to do."""

    __slots__ = ("node", "base", "path", "entries", "todo", "pending")

    def __init__(self, node: _Node, base: bytes | None, path: bytes,
                 entries: dict[bytes, Entry]):
        self.node = node
        self.base = base
        self.path = path
        self.entries = entries
        self.todo = list(reversed(node.children.items()))
        self.pending: bytes | None = None  # the child dir being built, by name


class _Builder:
    """Step 2: applies the upper's change tree to the base tree (an explicit stack: a tree
    of any depth builds)."""

    def __init__(self, *, odb: _Odb, worktree: Worktree, upper_fd: int,
                 base_tree: bytes, changes: _Node, warnings: list[str],
                 prev_tree: bytes | None = None, progress: ui.Progress | None = None):
        self.odb = odb
        self.progress = progress or ui.Progress("capturing", 0)
        self.root = worktree.root
        self.upper_fd = upper_fd  # every read of the upper goes through it (beneath)
        self._dir: tuple[bytes, int] | None = None  # the upper dir read last, and its fd
        self._lower_fd: int | None = None  # the worktree, for .gitignore files not in the upper
        self.base_tree = base_tree
        self.prev_tree = prev_tree  # the last capture's: its objects need no writing again
        self.changes = changes
        self.warnings = warnings
        self.ignored = 0
        self.rules = ignore.Rules(
            load_gitignore=self._gitignore,
            exclude=ignore.host_excludes(root=worktree.root, common_dir=worktree.common_dir),
        )

    # -- the merged view (upper over the worktree), for .gitignore files as the agent left them
    def _gitignore(self, d: bytes) -> bytes | None:
        path = _join(d, b".gitignore")
        node: _Node | Change = self.changes
        hidden = False  # an opaque upper dir on the way hides the lower
        for part in path.split(b"/"):
            if not isinstance(node, _Node):
                return None
            hidden = hidden or node.opaque
            nxt = node.children.get(part)
            if nxt is None:
                return None if hidden else self._lower_file(path)
            node = nxt
        if isinstance(node, Change) and node.kind is Kind.FILE:
            try:
                got = self.read_entry(node)
            except OSError:
                return None
            return got[1] if got is not None else None
        return None  # a symlinked .gitignore is not followed (git >= 2.32), a whiteout deletes

    def _lower_file(self, path: bytes) -> bytes | None:
        """A regular file of the worktree (the overlay's lower), no symlink followed: an
        untracked .gitignore too (a self-ignoring .pytest_cache/.gitignore saying `*`)."""
        try:
            if self._lower_fd is None:
                self._lower_fd = beneath.open_root(self.root)
        except OSError:
            return None
        return beneath.read_regular(self._lower_fd, path, _MAX_IGNORE_FILE)

    def _parent(self, path: bytes) -> tuple[int, bytes]:
        """(an fd on the upper dir holding path, its name): reached through beneath, reused
        for the next path in the same dir (the build goes dir by dir)."""
        d, _, name = path.rpartition(b"/")
        if self._dir is None or self._dir[0] != d:
            self.close()
            self._dir = (d, beneath.open_dir(self.upper_fd, d))
        return self._dir[1], name

    def close(self) -> None:
        if self._dir is not None:
            os.close(self._dir[1])
            self._dir = None
        if self._lower_fd is not None:
            os.close(self._lower_fd)
            self._lower_fd = None

    def read_entry(self, ch: Change) -> tuple[int, bytes] | None:
        """One upper file or symlink as (git mode, bytes): the one read of an entry.
        None (with a warning) when a file is above MAX_BLOB."""
        if ch.kind is Kind.SYMLINK:
            dir_fd, name = self._parent(ch.path)
            return LINK, beneath.readlink(dir_fd, name)
        if ch.metacopy:  # data still in the lower file
            self.warnings.append(
                f"{ui.quote_path(ch.path)}: metacopy upper, data read from the lower")
            fd = os.open(os.path.join(os.fsencode(self.root), ch.path), beneath.FILE_FLAGS)
        else:
            dir_fd, name = self._parent(ch.path)
            fd = os.open(name, beneath.FILE_FLAGS, dir_fd=dir_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FileNotFoundError(ch.path)
            data = beneath.read_fd(fd, MAX_BLOB, st.st_size) if st.st_size <= MAX_BLOB else None
        finally:
            os.close(fd)
        if data is None:
            self.warnings.append(
                f"skipped {ui.quote_path(ch.path)}: bigger than {MAX_BLOB >> 20} MiB (left in the "
                "session, not captured)")
            return None
        return (EXEC if st.st_mode & stat.S_IXUSR else BLOB), data

    def _known(self, path: bytes, *entries: Entry | None) -> tuple[bytes | None, ...]:
        """Ids the repository has at path: in entries, and in the last capture."""
        prev = self.odb.lookup(self.prev_tree, path) if self.prev_tree is not None else None
        return tuple(e[1] if e is not None else None for e in (*entries, prev))

    def _blob(self, ch: Change, known: tuple[bytes | None, ...]) -> Entry | None:
        self.progress.step()
        try:
            got = self.read_entry(ch)
        except (FileNotFoundError, NotADirectoryError):
            return None  # removed by a still-running sandbox
        except OSError as e:
            if e.errno == errno.ELOOP:  # a dir swapped for a symlink: never followed
                self.warnings.append(f"skipped {ui.quote_path(ch.path)}: changed while capturing")
                return None
            self.warnings.append(f"skipped {ui.quote_path(ch.path)}: {e.strerror}")
            return None
        if got is None:
            return None
        mode, data = got
        return mode, self.odb.write_blob(data, known)

    def build(self) -> bytes:
        """The new root tree: directories done deepest first, from a stack of frames."""
        stack = [self._enter(self.changes, self.base_tree, b"")]
        while True:
            frame = stack[-1]
            child = self._next_dir(frame)
            if child is not None:
                stack.append(child)
                continue
            stack.pop()
            tree = self._finish(frame)
            if not stack:
                return tree or self.odb.write_tree({})
            parent = stack[-1]
            assert parent.pending is not None
            if tree is None:
                parent.entries.pop(parent.pending, None)
            else:
                parent.entries[parent.pending] = (TREE, tree)
            parent.pending = None

    def _enter(self, node: _Node, base: bytes | None, path: bytes) -> _Frame:
        if node.redirect is not None:
            src = node.redirect.lstrip(b"/") if node.redirect.startswith(b"/") else _join(
                path.rpartition(b"/")[0], node.redirect)
            found = self.odb.lookup(self.base_tree, src)
            base = found[1] if found and found[0] == TREE else None
        entries = {} if node.opaque or base is None else dict(self.odb.tree(base))
        return _Frame(node, base, path, entries)

    def _next_dir(self, frame: _Frame) -> _Frame | None:
        """Apply frame's file changes up to its next changed subdirectory; that one's frame."""
        entries = frame.entries
        while frame.todo:
            name, ch = frame.todo.pop()
            sub = _join(frame.path, name)
            if self._left_out(sub, name, ch):
                continue
            old = entries.get(name)
            if isinstance(ch, _Node):
                frame.pending = name
                return self._enter(ch, old[1] if old and old[0] == TREE else None, sub)
            if ch.kind is Kind.WHITEOUT:
                entries.pop(name, None)
                continue
            tracked = self.odb.lookup(self.base_tree, sub)
            if (tracked is None or tracked[0] == TREE) and self.rules.ignored(sub):
                self.ignored += 1  # stays in the upper, as git would leave it untracked
                continue
            blob = self._blob(ch, self._known(sub, old, tracked))
            if blob is not None:  # None: gone meanwhile, the lower shows through again
                entries[name] = blob
        return None

    def _left_out(self, sub: bytes, name: bytes, ch: _Node | Change) -> bool:
        """Names that would make git read another repository or config stay in the session,
        with a warning: any spelling of .git (a nested repository or gitfile, .GIT, git~1,
        .git. ...), and a .gitmodules the session adds or changes (a deletion is kept)."""
        if gittree.is_dotgit(name):
            self.warnings.append(f"left out {ui.quote_path(sub)}: a spelling of .git, git would "
                                 "take it for another repository (it stays in the session)")
            return True
        if gittree.is_dotgitmodules(name) and (isinstance(ch, _Node)
                                               or ch.kind is not Kind.WHITEOUT):
            self.warnings.append(f"left out {ui.quote_path(sub)}: .gitmodules makes git fetch and "
                                 "configure other repositories (it stays in the session)")
            return True
        return False

    def _no_gitdir(self, frame: _Frame) -> None:
        """A directory git would take for a repository (HEAD beside objects, refs or
        commondir): the entries of that shape the session added or changed are left out,
        and so is its config (what would run: core.fsmonitor, hooksPath...)."""
        if not gittree.makes_gitdir(frame.entries):
            return
        base = self.odb.tree(frame.base) if frame.base is not None else {}
        for name in sorted(frame.entries):
            if (gittree.repository_name(name) or name.lower() == b"config") \
                    and frame.entries[name] != base.get(name):
                self.warnings.append(
                    f"left out {ui.quote_path(_join(frame.path, name))}: beside "
                    "HEAD/objects/refs, git would take the directory for another repository "
                    "(it stays in the session)")
                if name in base:
                    frame.entries[name] = base[name]
                else:
                    del frame.entries[name]

    def _finish(self, frame: _Frame) -> bytes | None:
        self._no_gitdir(frame)
        if not frame.entries:
            return None
        here = (TREE, frame.base) if frame.base is not None else None
        return self.odb.write_tree(frame.entries, self._known(frame.path, here))


def _diff_key(item: tuple[str, bytes]) -> list[tuple[bytes, int]]:
    """A directory's files before the file of the same name, siblings by name."""
    parts = item[1].split(b"/")
    return [(p, 0) for p in parts[:-1]] + [(parts[-1], 1)]


def diff_trees(odb: _Odb, old: bytes | None, new: bytes | None
               ) -> list[tuple[str, bytes]]:
    """(A|M|D, path) for every file that differs; equal subtrees are skipped by oid."""
    out: list[tuple[str, bytes]] = []
    stack: list[tuple[bytes | None, bytes | None, bytes]] = [(old, new, b"")]
    while stack:
        old_t, new_t, prefix = stack.pop()
        if old_t == new_t:
            continue
        a = odb.tree(old_t) if old_t else {}
        b = odb.tree(new_t) if new_t else {}
        for name in {n for n, _ in a.items() ^ b.items()}:
            ea, eb = a.get(name), b.get(name)
            p = _join(prefix, name)
            ta = ea[1] if ea and ea[0] == TREE else None
            tb = eb[1] if eb and eb[0] == TREE else None
            if ta or tb:
                stack.append((ta, tb, p))
            if ea and eb and ea[0] != TREE and eb[0] != TREE:
                out.append(("M", p))
            elif ea and ea[0] != TREE:
                out.append(("D", p))
            elif eb and eb[0] != TREE:
                out.append(("A", p))
    out.sort(key=_diff_key)
    return out


# -- commits and refs


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


def _write_commit(repo: pygit2.Repository, odb: _Odb, *, tree: bytes, parents: list[bytes],
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
                         anchor: str | None) -> AgentHistory:
    """Step 3: the agent's own commits, imported when they descend from the base's HEAD;
    otherwise (rewritten history, a store or tree git would refuse) the reason to squash."""
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
                b.hex() == anchor or repo.descendant_of(b.hex(), anchor) for b in boundary):
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
        self.odb = _Odb(self.repo, worktree.common_dir / "objects")

    def build_tree(self) -> tuple[bytes, int]:
        """Steps 1 and 2: the upper's changes on the base tree; (tree, paths ignored)."""
        changes, nfiles = read_upper(self.session.upper, self.warnings)
        progress = ui.Progress("capturing", nfiles)
        upper_fd = beneath.open_root(self.session.upper)
        builder = _Builder(odb=self.odb, worktree=self.worktree, upper_fd=upper_fd,
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
                                     anchor=c.anchor)
        note = None
        if agent.squashed is not None:
            note = f"The agent's own commits were not kept ({agent.squashed}): one commit."
            c.warnings.append(f"agent's history not imported ({agent.squashed}); captured its "
                              "final state as one commit")
        parent = _parent(c.repo, prev=c.prev, same_base=c.same_base(), base=c.base_raw,
                         agent=agent)
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
        return f"agent/{session.name}: no changes"
    parts = [f"{r.added} added, {r.modified} modified, {r.deleted} deleted"]
    if r.imported:
        parts.append(f"{r.imported} agent commit{'s' if r.imported != 1 else ''} kept")
    if r.squashed:
        parts.append("agent history squashed")
    if r.ignored:
        parts.append(f"{r.ignored} ignored path{'s' if r.ignored != 1 else ''} left out")
    state = "unchanged" if r.unchanged else r.commit[:12]
    return f"agent/{session.name} {state}: " + ", ".join(parts)
