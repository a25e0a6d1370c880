"""Each commit `apply --commit` lands, judged on its own as apply judges the net change.

The net diff review shows is not all that lands: a commit may bring a file a later one takes
away, and it stays in your history (a checkout, bisect or rebase writes it). So each landed
commit's own change (its tree against the one before it on your branch) is judged: a path
that would make git find another repository (a .git or .gitmodules spelling, a directory
shaped like a git dir in that commit's tree) or a submodule entry refuses the whole landing;
its risky paths are listed for the prompt, unless its version is the one review showed."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pygit2

from git_agent import beneath, gittree, ui
from git_agent.capture.tree import Odb
from git_agent.capture.treediff import diff_trees
from git_agent.errors import GitAgentError
from git_agent.mergeback import foreign, link_walk, risks
from git_agent.mergeback.user_config import GitConfig
from git_agent.mergeback.view import STATUS, FileChange


def _data(odb: Odb, e: gittree.Entry | None) -> bytes | None:
    if e is None or e[0] in (gittree.GITLINK, gittree.TREE):
        return None
    return bytes(odb.odb.read(pygit2.Oid(raw=e[1]))[1])


def _walked(odb: Odb, tree: bytes, root_fd: int, path: bytes, target: bytes) -> str | None:
    """The link at path resolved as the kernel would once this commit's tree is checked out:
    its tracked paths as the tree has them, every other one your worktree as it is now."""
    def look(comps: Sequence[bytes]) -> bytes | None:
        e = odb.lookup(tree, b"/".join(comps))
        if e is None:
            return link_walk.worktree_entry(root_fd, comps)
        return link_walk.written(e[0] if e[0] != gittree.TREE else None,
                                 lambda: _data(odb, e))
    return link_walk.leads_out(look, path, target)


def judge(repo: pygit2.Repository, odb: Odb, config: GitConfig, before: bytes, after: bytes,
          label: str, reviewed: Mapping[bytes, str | None], root: str) -> list[FileChange]:
    """The risky changes of one landed commit (before -> after), each risk naming the commit
    (label); GitAgentError, nothing written, when one would make git find another
    repository or is a submodule. reviewed: path -> the blob review showed there."""
    changed = diff_trees(odb, before, after)
    brought = [p for k, p in changed if k != "D"]
    shaped = foreign.tree_shaped_dirs(repo, after, brought)
    out: list[FileChange] = []
    refused: list[str] = []
    root_fd = beneath.open_root(root)
    try:
        walked = {p: r for k, p in changed if k != "D" and (e := odb.lookup(after, p))
                  and e[0] == gittree.LINK and (t := _data(odb, e)) is not None
                  and (r := _walked(odb, after, root_fd, p, t))}
    finally:
        os.close(root_fd)
    for kind, path in changed:
        old, new = odb.lookup(before, path), odb.lookup(after, path)
        old_mode, new_mode = (old[0] if old else 0), (new[0] if new else 0)
        found = risks.assess(path=os.fsdecode(path), old_mode=old_mode, new_mode=new_mode,
                             old_data=_data(odb, old) if path.endswith(b"package.json") else None,
                             new_data=_data(odb, new), hooks=config.hooks,
                             configs=config.configs, named=config.named)
        if path in shaped:
            found.insert(0, shaped[path])
        if path in walked and not any(r.startswith("symlink") for r in found):
            found.append(walked[path])
        if gittree.GITLINK in (old_mode, new_mode) or any(
                r.startswith(risks.FOREIGN_GIT) for r in found):
            refused.append(ui.quote_path(path))
            continue
        if not found or (new is not None and reviewed.get(path) == new[1].hex()):
            continue  # this version is the one review showed, with these risks
        out.append(FileChange(
            path=path, status=STATUS[kind], old_mode=old_mode, new_mode=new_mode,
            old_oid=old[1].hex() if old else None, new_oid=new[1].hex() if new else None,
            risks=tuple(f"{r} (in {label})" for r in found)))
    if refused:
        more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        raise GitAgentError(
            f"refusing --commit: {label} brings {', '.join(refused[:5])}{more}, which "
            f"{risks.FOREIGN_GIT} (or is a submodule) once that commit is checked out, even "
            "if a later commit takes it away; nothing was landed; apply it without --commit")
    return out
