"""Drop applied or rejected paths from a session's overlay upper dir, never resurrecting others.

An upper entry *covers* a path when it sits on one of the path's parents and hides the lower
dir there: a whiteout (the agent deleted the whole dir), an opaque or redirected dir (the
agent replaced the dir whole), or a file or symlink standing where the worktree has a dir.
Removing a cover would change what the agent sees for every path below it, so a cover is
removed only when every change at or below it is consumed; otherwise it is left as it is
(after apply its content equals the worktree anyway). A *rejected* path below a cover that
has to stay is made to hold its base version instead, so it leaves the change and is never
applied later: removed from the upper where the base has nothing there (an opaque dir hides
the lower), written from the base otherwise; a whiteout or a file standing for a whole dir is
turned into an opaque dir first (holding only the rejected paths, everything else below it
stays deleted). Nothing outside the upper is touched and no symlink is followed.
"""

from __future__ import annotations

import bisect
import errno
import os
import stat
from collections.abc import Callable, Mapping, Sequence, Set

from git_agent import beneath, gittree, ui
from git_agent.capture import overlay
from git_agent.errors import GitAgentError
from git_agent.mergeback import wt_paths
from git_agent.mergeback.reach import Reach
from git_agent.mergeback.unlinker import Unlinker
from git_agent.session import Session

_COVERS = (overlay.Kind.WHITEOUT, overlay.Kind.OPAQUE_DIR, overlay.Kind.FILE,
           overlay.Kind.SYMLINK, overlay.Kind.SKIP)

# what the base holds at a rejected path: (git mode, bytes; a link's target for links) or None
BaseEntry = tuple[int, bytes] | None
_OPAQUE_XATTR = "user.overlay.opaque"  # bwrap mounts the overlay in a user namespace


def check_upper(session: Session) -> None:
    """Refuse a session whose upper dir is missing or not a real directory."""
    try:
        st = os.lstat(session.upper)
    except FileNotFoundError:
        st = None
    if st is None or not stat.S_ISDIR(st.st_mode):
        raise GitAgentError(
            f"session {session.name!r} is damaged: its overlay dir {session.upper} is missing "
            f"or not a directory; `git agent drop {session.name}` discards it")


def _kind_at(dir_fd: int, name: bytes) -> overlay.Kind | None:
    try:
        kind, _, xattrs = overlay.kind_at(dir_fd, name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if kind is overlay.Kind.DIR and any(k.endswith(".overlay.redirect") for k in xattrs):
        return overlay.Kind.OPAQUE_DIR  # a renamed dir: hides its lower origin, like opaque
    return kind


def _kind(root: int, rel: bytes) -> overlay.Kind | None:
    """What the upper holds at rel (None: nothing, or a parent is no longer a dir)."""
    comps = beneath.parts(rel)
    fd, _, err = wt_paths.reach(root, comps[:-1])  # from the nearest cached dir, no link followed
    try:
        if err is not None:
            if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise err
        return _kind_at(fd, comps[-1])
    finally:
        os.close(fd)


def _lexists(root: int, rel: bytes) -> bool:
    return _kind(root, rel) is not None  # every entry has a kind (SKIP for the odd ones)


def _cover(root: int, path: bytes, dirs: dict[bytes, overlay.Kind | None] | None = None,
           ) -> tuple[bytes | None, overlay.Kind | None]:
    """The topmost parent entry of path that covers it, and the kind of path's own entry.
    dirs: the kinds of parents found so far (while nothing but files is removed)."""
    parts = path.split(b"/")
    for i in range(1, len(parts) + 1):
        prefix = b"/".join(parts[:i])
        if dirs is not None and i < len(parts) and prefix in dirs:
            kind = dirs[prefix]
        else:
            kind = _kind(root, prefix)
            if dirs is not None and i < len(parts):
                dirs[prefix] = kind
        if kind is None:
            return None, None
        if i == len(parts):
            return None, kind
        if kind in _COVERS:
            return prefix, kind
    return None, None


def _below(paths: Sequence[bytes], top: bytes) -> set[bytes]:
    """The paths at or below top, from sorted paths (bisected: apply may pass thousands)."""
    lo = bisect.bisect_left(paths, top)
    hi = bisect.bisect_left(paths, top + b"0")  # b"0" sorts right after b"/"
    return {p for p in paths[lo:hi] if p == top or p.startswith(top + b"/")}


def _leaves(root: int, top: bytes) -> set[bytes]:
    """Every non-directory entry at or below top in the upper, as paths from the upper root.
    An explicit stack: no recursion on the tree's depth."""
    out: set[bytes] = set()
    stack = [top]
    with Reach(root) as reach:
        while stack:
            rel = stack.pop()
            try:
                fd = reach.open(rel.split(b"/"))
            except OSError:
                out.add(rel)  # no longer a dir: it is a leaf now
                continue
            try:
                entries = beneath.scan(fd)
            finally:
                os.close(fd)
            for name, st in entries:
                path = rel + b"/" + name
                if stat.S_ISDIR(st.st_mode):
                    stack.append(path)
                else:
                    out.add(path)
    return out


def _remove(root: int, rel: bytes) -> None:
    """Remove rel (a dir with its content), then its parents left empty."""
    comps = beneath.parts(rel)
    fd, _, err = wt_paths.reach(root, comps[:-1])
    try:
        if err is not None:
            if err.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise err
            return  # a parent changed meanwhile (a running sandbox): nothing of ours there now
        try:
            beneath.rmtree(fd, comps[-1])  # a dir's content too; no link followed
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise
            return
    finally:
        os.close(fd)
    wt_paths.forget()  # it may have been a dir, with cached dirs below
    _prune_parents(root, rel)


def _prune_all(root: int, emptied: set[bytes]) -> None:
    """_prune_parents for each dir noted, each tried once: the deepest level first, the dirs of
    a level by a few threads at once (an rmdir waits on the filesystem's journal, as an unlink
    does), then the parents of those removed."""
    from concurrent.futures import ThreadPoolExecutor

    from git_agent.mergeback.unlinker import THREADS

    tried: set[bytes] = set()
    todo = {d for d in emptied if d}
    with ThreadPoolExecutor(THREADS, thread_name_prefix="prune") as pool:
        while todo:
            depth = max(d.count(b"/") for d in todo)
            level = sorted(d for d in todo if d.count(b"/") == depth)
            todo -= set(level)
            tried.update(level)
            for d, gone in zip(level, pool.map(lambda d: _prune_one(root, d, forget=False),
                                               level), strict=True):
                parent = d.rpartition(b"/")[0]
                if gone and parent and parent not in tried:
                    todo.add(parent)
    wt_paths.forget()  # once, here: no thread may close the cached fds under another


def _prune_one(root: int, rel: bytes, *, forget: bool = True) -> bool:
    """rmdir rel when it is a plain dir left empty (an opaque or redirected one hides lower)."""
    try:
        with beneath.parent(root, rel) as (fd, name):
            if _kind_at(fd, name) is not overlay.Kind.DIR:
                return False
            beneath.rmdir(fd, name)
    except OSError:
        return False
    if forget:
        wt_paths.forget()
    return True


def _prune_parents(root: int, rel: bytes) -> None:
    """Remove parent dirs left empty, unless they are opaque or redirected (they hide lower)."""
    parent = rel.rpartition(b"/")[0]
    while parent and _prune_one(root, parent):
        parent = parent.rpartition(b"/")[0]


def _make_opaque(root: int, cover: bytes) -> None:
    """Turn a whiteout, file or link standing for a whole dir into an empty opaque dir."""
    with beneath.parent(root, cover) as (fd, name):
        if _kind_at(fd, name) is overlay.Kind.OPAQUE_DIR:
            return
        beneath.unlink(fd, name)
        beneath.mkdir(fd, name, 0o755)
        with beneath.opened_dir(fd, [name]) as d:
            os.setxattr(d, _OPAQUE_XATTR, b"y")


def _restore(root: int, cover: bytes, path: bytes, base: BaseEntry) -> bool:
    """Make path, below the opaque dir cover, hold its base version; False when it cannot."""
    if base is None:
        if _lexists(root, path) and _kind(root, path) not in (overlay.Kind.DIR,
                                                              overlay.Kind.OPAQUE_DIR):
            _remove(root, path)
        return True
    mode, data = base
    if mode not in (gittree.LINK, gittree.EXEC, gittree.BLOB):
        return False  # a submodule: no file can stand for it
    parts = path.split(b"/")
    fd = beneath.open_dir(root, parts[: len(cover.split(b"/"))])
    try:
        for part in parts[len(cover.split(b"/")) : -1]:
            kind = _kind_at(fd, part)
            if kind is None:
                beneath.mkdir(fd, part, 0o755)
            elif kind is overlay.Kind.WHITEOUT:
                beneath.unlink(fd, part)
                beneath.mkdir(fd, part, 0o755)
            elif kind not in (overlay.Kind.DIR, overlay.Kind.OPAQUE_DIR):
                return False  # a pending file of the agent's stands there (refused by apply)
            nfd = os.open(part, beneath.DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        name = parts[-1]
        if beneath.lexists(fd, name):
            beneath.rmtree(fd, name)
        if mode == gittree.LINK:
            beneath.symlink(data, fd, name)
        else:
            ffd = beneath.create(fd, name, 0o755 if mode == gittree.EXEC else 0o644)
            with os.fdopen(ffd, "wb") as f:
                f.write(data)
    finally:
        os.close(fd)
    return True


def consume_paths(upper: os.PathLike[str] | str, done: Set[bytes], changed: Set[bytes],
                  settled: Set[bytes] = frozenset(),
                  same_as_worktree: Callable[[bytes, bytes], bool] = lambda _u, _p: False,
                  rejected: Mapping[bytes, BaseEntry] | None = None,
                  ) -> list[bytes]:
    """Remove the upper entries of the `done` paths; `changed` is every path of the session,
    `settled` those the worktree already holds as the agent left them (applied earlier under
    a cover that had to stay): they let the cover go too, as do other entries in an opaque
    dir for which same_as_worktree(upper entry, path) says the worktree holds the same.
    `rejected` (also in done) maps the rejected paths to their base version: one below a
    cover that has to stay is given that version in the upper (it never stays in the session).
    The caller refuses a rejection that contradicts a path still pending (apply.py).

    Returns the done paths that had to stay because a cover above them is still needed.
    """
    root = wt_paths.open_root(upper)  # the dirs reached are kept open while it works
    try:
        return _consume(root, done, changed, settled, same_as_worktree, rejected or {})
    finally:
        wt_paths.close_root(root)


def _same(root: int, rel: bytes, same_as_worktree: Callable[[bytes, bytes], bool]) -> bool:
    """same_as_worktree on the upper entry rel, named through its parent's fd (/proc): the
    callee's lstat/readlink/O_NOFOLLOW open then cannot be led out of the upper."""
    try:
        with beneath.parent(root, rel) as (fd, name):
            return same_as_worktree(beneath.proc_path(fd, name), rel)
    except OSError:
        return False


def _take(root: int, path: bytes, dirs: dict[bytes, overlay.Kind | None],
          changed_sorted: Sequence[bytes], covers: dict[bytes, overlay.Kind],
          unlinker: Unlinker, last: bytes | None) -> bytes | None:
    """The first pass over one done path: a cover above it is noted in covers, an entry that
    is no dir goes to unlinker; returns the parent dir last handed to unlinker."""
    if not path or gittree.is_dotgit(path.split(b"/")[0]) or b".." in path.split(b"/"):
        raise GitAgentError(f"refusing to touch {path!r} in the session")
    cover, kind = _cover(root, path, dirs)
    if cover is not None:
        covers.setdefault(cover, kind)  # type: ignore[arg-type]
    elif kind is overlay.Kind.OPAQUE_DIR or (
            kind in (overlay.Kind.FILE, overlay.Kind.SYMLINK)
            and _below(changed_sorted, path) - {path}):
        covers.setdefault(path, kind)  # a dir replacing a file, or a file replacing a dir
    elif kind is not None and kind is not overlay.Kind.DIR:
        # not a dir (the parents' kinds stay as found): unlinked by fd on its parent
        comps = beneath.parts(path)
        fd, _, err = wt_paths.reach(root, comps[:-1])
        try:
            if err is None:
                parent = path.rpartition(b"/")[0]
                unlinker.add(fd, comps[-1], same_dir=parent == last)
                return parent
        finally:
            os.close(fd)
    # a plain dir standing at a file's path (merged with a lower dir): left, it holds others
    return None


def _consume(root: int, done: Set[bytes], changed: Set[bytes], settled: Set[bytes],
             same_as_worktree: Callable[[bytes, bytes], bool],
             rejected: Mapping[bytes, BaseEntry]) -> list[bytes]:
    covers: dict[bytes, overlay.Kind] = {}
    kept: list[bytes] = []
    changed_sorted, done_sorted = sorted(changed), sorted(done)
    dirs: dict[bytes, overlay.Kind | None] = {}  # the parents' kinds, while only files go
    progress = ui.Progress("taking them out of the session", len(done_sorted))
    emptied: set[bytes] = set()  # the dirs files were unlinked from
    with Unlinker() as unlinker:
        last = None
        for path in done_sorted:
            progress.step()
            last = _take(root, path, dirs, changed_sorted, covers, unlinker, last)
            if last is not None:
                emptied.add(last)
    progress.done()
    _prune_all(root, emptied)
    for cover in sorted(covers, key=len):
        if not _lexists(root, cover):
            continue  # removed with an outer cover
        needed = _below(changed_sorted, cover)
        mine = _below(done_sorted, cover)
        extra = {p for p in _leaves(root, cover) - mine - {cover}
                 if not _same(root, p, same_as_worktree)}
        if needed <= (done | settled) and (
                cover in rejected
                or not (covers[cover] is overlay.Kind.OPAQUE_DIR and extra)):
            _remove(root, cover)
            continue
        mine_rejected = sorted(p for p in mine if p in rejected and p != cover)
        kind = covers[cover]
        if cover in rejected and kind is overlay.Kind.OPAQUE_DIR:
            kept.append(cover)  # its file cannot come back over pending paths (apply refuses)
        elif mine_rejected or cover in rejected:
            if kind in (overlay.Kind.WHITEOUT, overlay.Kind.OPAQUE_DIR) or cover in rejected:
                _make_opaque(root, cover)
                kept.extend(p for p in mine_rejected if not _restore(root, cover, p, rejected[p]))
            else:
                kept.extend(mine_rejected)  # a pending file stands for the dir (apply refuses)
        kept.extend(sorted(p for p in mine if p not in rejected))
    return kept
