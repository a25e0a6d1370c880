"""`apply --ignored`: copy a session's ignored files out into the worktree, as safely as apply.

Read all, decide, then write: every file is read from the upper by fd (no link followed), each
path is checked as apply checks one (no spelling of .git, nothing that makes git find another
repository, no directory left shaped like a git dir, no symlink that leads out of the worktree
or into .git), and only then written, one atomic rename per file, all of it taken back if one
write fails. A path where your worktree holds something else (a file, a link, a directory, or a
parent that is not a directory) is never written over: the whole copy is refused and says
where. A path that already holds the same is left as it is. The files stay in the session."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from git_agent import beneath, gittree, ui
from git_agent.errors import GitAgentError
from git_agent.mergeback import risks
from git_agent.mergeback import worktree_files as wtf
from git_agent.mergeback.ignored import IgnoredFile
from git_agent.mergeback.journal import take_back
from git_agent.mergeback.view import View
from git_agent.mergeback.worktree_files import Entry


@dataclass
class Copy:
    file: IgnoredFile
    entry: Entry
    risks: list[str]
    noop: bool = False  # the worktree holds the same already


def read(view: View, files: Sequence[IgnoredFile]) -> list[Copy]:
    """Every file's bytes (a link's target) from the upper, and its risks."""
    out = []
    upper = beneath.open_root(view.session.upper)
    try:
        for f in files:
            with beneath.parent(upper, f.path) as (fd, name):
                st = beneath.lstat(fd, name)
                if f.mode == gittree.LINK:
                    data = beneath.readlink(fd, name)
                else:
                    ffd = os.open(name, beneath.FILE_FLAGS, dir_fd=fd)
                    with os.fdopen(ffd, "rb") as fh:
                        data = fh.read()
            if (st.st_mode & 0o170000) != (0o120000 if f.mode == gittree.LINK else 0o100000):
                raise GitAgentError(f"{ui.quote_path(f.path)} changed in the session while "
                                    "it was read; nothing was copied")
            found = risks.assess(path=os.fsdecode(f.path), old_mode=0, new_mode=f.mode,
                                 new_data=data, hooks=view.config.hooks,
                                 configs=view.config.configs, named=view.config.named)
            out.append(Copy(f, Entry(f.mode, data), found))
    finally:
        os.close(upper)
    return out


def _leads_out(c: Copy) -> str | None:
    if c.entry.mode != gittree.LINK:
        return None
    return risks.symlink_risk(os.fsdecode(c.file.path), c.entry.data)


def check(view: View, copies: Sequence[Copy]) -> None:
    """Refuse, naming the paths, what no answer lets through: a path of .git or that makes git
    find another repository, a link leading out, a directory left shaped like a git dir, and
    anything of yours at a path (or a parent that is no directory). Marks what is there."""
    refused: list[str] = []
    for c in copies:
        shown = ui.quote_path(c.file.path)
        try:
            wtf.components(c.file.path)
        except GitAgentError as e:
            refused.append(f"  {shown}: {e}")
            continue
        foreign = next((r for r in c.risks if r.startswith(risks.FOREIGN_GIT)), None)
        out = _leads_out(c)
        if foreign or out:
            refused.append(f"  {shown}: {foreign or out}")
    root = wtf.open_root(view.worktree.root)
    try:
        new_names: dict[bytes, set[bytes]] = {}
        for c in copies:
            parts = c.file.path.split(b"/")
            for i in range(len(parts)):  # each dir on the way gets the name below it
                new_names.setdefault(b"/".join(parts[:i]), set()).add(parts[i])
            if refused:
                continue
            work, blocker, _ = wtf.read_signed(root, c.file.path)
            if work == c.entry:
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
        wtf.close_root(root)
    if refused:
        raise GitAgentError("not copying the ignored files; nothing was written:\n"
                            + "\n".join(refused))


def write(view: View, copies: Sequence[Copy]) -> None:
    """All of them or none: a failed write takes back the ones before it."""
    todo = [c for c in copies if not c.noop]
    progress = ui.Progress("copying", len(todo))
    root = wtf.open_root(view.worktree.root)
    spare = view.worktree.git_dir / f"agent-apply-{os.getpid()}-{os.urandom(4).hex()}"
    journal = wtf.Journal(root, spare)
    c: Copy | None = None
    try:
        for c in todo:
            wtf.write(root, c.file.path, c.entry, None, journal, None, None)
            progress.step()
        journal.done()
    except BaseException as e:
        where = "" if c is None else f" writing {ui.quote_path(c.file.path)}"
        take_back(journal, e, what="copy", where=where,
                  nothing="nothing was copied (your worktree is as it was)")
        raise
    finally:
        wtf.close_root(root)
        progress.done()
