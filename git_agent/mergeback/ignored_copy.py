"""`apply --ignored`: copy a session's ignored files out into the worktree, as safely as apply.

Read all, decide, then write: every file is read from the upper by fd (no link followed), each
path is checked as apply checks one (no spelling of .git, nothing that makes git find another
repository, no directory left shaped like a git dir, no symlink that leads out of the worktree
or into .git), and only then written, one atomic rename per file, all of it taken back if one
write fails. A path where your worktree holds something else (a file, a link, a directory, or a
parent that is not a directory) is never written over: the whole copy is refused and says
where. A path that already holds the same is left as it is. The files stay in the session.
A regular file is never held in memory: its first bytes and its lstat are read (and a
package.json whole, to judge it), and it is streamed on write in 1 MiB chunks, its holes kept
(SEEK_DATA/SEEK_HOLE), refused if it changed in the session meanwhile; one bigger than
BIG_FILE is a risk you confirm, said with its size."""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from git_agent import beneath, gittree, ui
from git_agent.errors import GitAgentError
from git_agent.mergeback import link_walk, risks
from git_agent.mergeback import worktree_files as wtf
from git_agent.mergeback.ignored import IgnoredFile, human
from git_agent.mergeback.journal import take_back
from git_agent.mergeback.view import View
from git_agent.mergeback.worktree_files import Entry

BIG_FILE = gittree.MAX_BLOB  # bigger (apparent size): a risk to confirm, as capture leaves it out
CHUNK = 1 << 20
_JUDGED_WHOLE = 16 << 20  # a package.json up to this size is read whole to judge its scripts


@dataclass
class Copy:
    file: IgnoredFile
    entry: Entry  # a link's target; a regular file's mode only (streamed from the upper)
    risks: list[str]
    noop: bool = False  # the worktree holds the same already
    sig: wtf.Sig | None = None  # a regular file's lstat in the upper when it was read


def _changed(path: bytes) -> GitAgentError:
    return GitAgentError(f"{ui.quote_path(path)} changed in the session while it was read; "
                         "nothing was copied")


def read(view: View, files: Sequence[IgnoredFile]) -> list[Copy]:
    """Every link's target and every file's first bytes from the upper, and their risks."""
    out = []
    upper = beneath.open_root(view.session.upper)
    try:
        for f in files:
            extra = []
            with beneath.parent(upper, f.path) as (fd, name):
                st = beneath.lstat(fd, name)
                if f.mode == gittree.LINK:
                    data = beneath.readlink(fd, name)
                else:
                    ffd = os.open(name, beneath.FILE_FLAGS, dir_fd=fd)
                    try:
                        whole = name.lower() == b"package.json" and st.st_size <= _JUDGED_WHOLE
                        data = os.pread(ffd, _JUDGED_WHOLE if whole else risks.SNIFF_BYTES, 0)
                        if sig(os.fstat(ffd)) != sig(st):
                            raise _changed(f.path)
                    finally:
                        os.close(ffd)
                    if st.st_size > BIG_FILE:
                        extra.append(f"big file: {human(st.st_size)} "
                                     f"({human(st.st_blocks * 512)} of it on disk)")
            if (st.st_mode & 0o170000) != (0o120000 if f.mode == gittree.LINK else 0o100000):
                raise _changed(f.path)
            found = risks.assess(path=os.fsdecode(f.path), old_mode=0, new_mode=f.mode,
                                 new_data=data, hooks=view.config.hooks,
                                 configs=view.config.configs, named=view.config.named)
            if f.mode == gittree.LINK:
                out.append(Copy(f, Entry(f.mode, data), found + extra))
            else:
                out.append(Copy(f, Entry(f.mode), found + extra, sig=sig(st)))
    finally:
        os.close(upper)
    return out


def sig(st: os.stat_result) -> wtf.Sig:
    return wtf.sig(st)


def _open_upper(upper: int, c: Copy) -> int:
    """The upper's file, still the one read (same inode, size, mtime), opened beneath."""
    try:
        fd = beneath.open_file(upper, c.file.path)
    except OSError as e:
        raise _changed(c.file.path) from e
    if sig(os.fstat(fd)) != c.sig:
        os.close(fd)
        raise _changed(c.file.path)
    return fd


def _same_bytes(a: int, b: int, size: int) -> bool:
    at = 0
    while at < size:
        x = os.pread(a, CHUNK, at)
        if not x or x != os.pread(b, len(x), at):
            return False
        at += len(x)
    return True


def _holds_the_same(root: int, upper: int, c: Copy) -> bool:
    """Does your worktree's file at c's path hold the upper's bytes (read in chunks)?"""
    assert c.sig is not None
    src = _open_upper(upper, c)
    try:
        dst = beneath.open_file(root, c.file.path)
    except OSError:
        os.close(src)
        return False
    try:
        return os.fstat(dst).st_size == c.sig[2] and _same_bytes(src, dst, c.sig[2])
    finally:
        os.close(src)
        os.close(dst)


def _copy_sparse(src: int, dst: int, size: int) -> None:
    """size bytes of src into dst in CHUNK-sized pieces, only its data (holes stay holes)."""
    at = 0
    while at < size:
        try:
            start = os.lseek(src, at, os.SEEK_DATA)
            end = min(os.lseek(src, start, os.SEEK_HOLE), size)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break  # a hole to the end
            if e.errno != errno.EINVAL:
                raise
            start, end = at, size  # no SEEK_DATA here: all of it is data
        while start < end:
            data = os.pread(src, min(CHUNK, end - start), start)
            if not data:
                raise OSError(errno.EIO, "the file shrank while it was copied")
            os.pwrite(dst, data, start)
            start += len(data)
        at = end
    os.ftruncate(dst, size)


def _filler(upper: int, c: Copy) -> Callable[[int], None]:
    def fill(dst: int) -> None:
        src = _open_upper(upper, c)
        try:
            assert c.sig is not None
            _copy_sparse(src, dst, c.sig[2])
            if sig(os.fstat(src)) != c.sig:
                raise _changed(c.file.path)
        finally:
            os.close(src)
    return fill


def _leads_out(c: Copy) -> str | None:
    if c.entry.mode != gittree.LINK:
        return None
    return risks.symlink_risk(os.fsdecode(c.file.path), c.entry.data)


def _chain_risks(view: View, copies: Sequence[Copy]) -> None:
    """Each link copied, resolved as the kernel would (link_walk) through what your worktree
    will be once copied: the links and files copied, and for every other path your worktree
    as it is now (never the session's upper: the copy writes nothing else). One leading out,
    looping or into .git is refused; one to a directory above it is a risk line (a later
    `..` through it climbs past where it reads)."""
    if not any(c.entry.mode == gittree.LINK for c in copies):
        return
    writes = {c.file.path: link_walk.written(c.entry.mode, functools.partial(bytes, c.entry.data))
              for c in copies}
    found = link_walk.link_risks_beneath(view.worktree.root, writes)
    for c in copies:
        r = found.get(c.file.path)
        if r and not _leads_out(c) and r not in c.risks:
            c.risks.append(r)


def check(view: View, copies: Sequence[Copy]) -> None:
    """Refuse, naming the paths, what no answer lets through: a path of .git or that makes git
    find another repository, a link leading out, a directory left shaped like a git dir, and
    anything of yours at a path (or a parent that is no directory). Marks what is there."""
    refused: list[str] = []
    _chain_risks(view, copies)
    for c in copies:
        shown = ui.quote_path(c.file.path)
        try:
            wtf.components(c.file.path)
        except GitAgentError as e:
            refused.append(f"  {shown}: {e}")
            continue
        foreign = next((r for r in c.risks if r.startswith(risks.FOREIGN_GIT)), None)
        out = _leads_out(c) or next((r for r in c.risks if r.startswith(link_walk.REFUSED)),
                                    None)
        if foreign or out:
            refused.append(f"  {shown}: {foreign or out}")
    root = wtf.open_root(view.worktree.root)
    upper = beneath.open_root(view.session.upper)
    try:
        new_names: dict[bytes, set[bytes]] = {}
        for c in copies:
            parts = c.file.path.split(b"/")
            for i in range(len(parts)):  # each dir on the way gets the name below it
                new_names.setdefault(b"/".join(parts[:i]), set()).add(parts[i])
            if refused:
                continue
            work, blocker, _ = wtf.read_signed(root, c.file.path,
                                               contents=c.entry.mode == gittree.LINK)
            if work == c.entry and (c.entry.mode == gittree.LINK
                                    or _holds_the_same(root, upper, c)):
                c.noop = True
            elif blocker is not None:
                refused.append(f"  {ui.quote_path(c.file.path)}: {ui.quote_path(blocker)} is "
                               "not a directory in your worktree")
            elif work is not None:
                refused.append(f"  {ui.quote_path(c.file.path)}: your worktree has "
                               f"{'a directory' if work.mode == gittree.TREE else 'another file'}"
                               " there (it is never written over; move yours away first)")
        for d, names in new_names.items():
            if not d:
                continue  # the top holds your .git, which git finds first
            here = set(names)
            try:
                with beneath.opened_dir(root, d) as fd:
                    here |= {os.fsencode(n) for n in os.listdir(fd)}
            except OSError:
                pass
            if gittree.makes_gitdir(here):
                refused.append(f"  {ui.quote_path(d + b'/')}: {risks.FOREIGN_GIT} (HEAD beside "
                               "objects/refs: a git dir whose config git reads)")
    finally:
        os.close(upper)
        wtf.close_root(root)
    if refused:
        raise GitAgentError("not copying the ignored files; nothing was written:\n"
                            + "\n".join(refused))


def write(view: View, copies: Sequence[Copy]) -> None:
    """All of them or none: a failed write takes back the ones before it."""
    todo = [c for c in copies if not c.noop]
    progress = ui.Progress("copying", len(todo))
    root = wtf.open_root(view.worktree.root)
    upper = beneath.open_root(view.session.upper)
    spare = view.worktree.git_dir / f"agent-apply-{os.getpid()}-{os.urandom(4).hex()}"
    journal = wtf.Journal(root, spare)
    c: Copy | None = None
    try:
        for c in todo:
            wtf.write(root, c.file.path, c.entry, None, journal, None, None,
                      fill=None if c.entry.mode == gittree.LINK else _filler(upper, c))
            progress.step()
        journal.done()
    except BaseException as e:
        where = "" if c is None else f" writing {ui.quote_path(c.file.path)}"
        take_back(journal, e, what="copy", where=where,
                  nothing="nothing was copied (your worktree is as it was)")
        raise
    finally:
        os.close(upper)
        wtf.close_root(root)
        progress.done()
