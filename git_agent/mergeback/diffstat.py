"""`git diff --stat` drawn from stored line counts, byte for byte as git 2.39 prints it, or None
where that cannot be sure (then review runs git as before).

The stat block is git's show_stats: the name column, `|`, the count, the +/- graph scaled to
the width git uses, `Bin A -> B bytes` for binary files, the summary line, green and red from
git's defaults when colour is on. The counts come from the assessment (assessed.py), made by
`git diff-tree --numstat` with the default algorithm when the branch was made. Git's own output
is used instead whenever something it reads could make it print otherwise (`usable`): config
that changes the counts, the order, the widths or the colours; a gitattributes file anywhere
git would read one (binary-ness is the `diff` attribute's); a submodule; a width from COLUMNS
that git would read differently; counts big enough to overflow git's int arithmetic."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from git_agent import gittree, proc

GREEN, RED, RESET = "\x1b[32m", "\x1b[31m", "\x1b[m"  # git's color.diff.new / old / reset

# config keys that change what `git diff --stat` prints from the same two commits
CONFIG = frozenset({"diff.algorithm", "diff.indentheuristic", "diff.statgraphwidth",
                    "diff.statnamewidth", "diff.orderfile", "diff.relative",
                    "color.diff.new", "color.diff.old", "core.quotepath",
                    "core.attributesfile", "core.splitindex", "index.version",
                    "core.bigfilethreshold"})
_INT_MAX = 2**31 - 1

# (the name as git prints it, lines added, lines deleted, binary); for a binary file the
# "lines" are git's byte sizes of the new and old blobs (0, 0 when the content is the same)
Row = tuple[str, int, int, bool]


def usable(*, keys: frozenset[str], root: Path, git_dirs: Iterable[Path],
           changes: Sequence[tuple[bytes, int, int]],
           environ: dict[str, str] | os._Environ[str]) -> bool:
    """Whether git would count and print these changes (path, old mode, new mode) as the
    stored counts say: none of CONFIG set, no submodule, no gitattributes file it could read."""
    return (not keys & CONFIG and not any(gittree.GITLINK in (o, n) for _, o, n in changes)
            and attributes_free(root=root, git_dirs=git_dirs, paths=[p for p, _, _ in changes],
                                environ=environ))


def count(*, root: Path, base: str, head: str,
          changes: Sequence[tuple[bytes, str | None, str | None]],
          size: Callable[[str | None], int]) -> list[tuple[int, int, bool]] | None:
    """Each change's (added, deleted, binary) by `git diff-tree --numstat`, for changes (path,
    old blob, new blob) in diff-tree's order; a binary file's are git's sizes: new and old blob
    (0, 0 when the same). None when git's list is not that one."""
    out = proc.git("-c", "core.bigFileThreshold=512m", "diff-tree", "-r", "-z", "--no-renames",
                   "--numstat", "--no-textconv", "--diff-algorithm=myers", "--indent-heuristic",
                   base, head, cwd=root)
    recs = out.split(b"\0")
    if recs and recs[-1] == b"":
        recs.pop()
    if len(recs) != len(changes):
        return None
    got: list[tuple[int, int, bool]] = []
    for rec, (path, old, new) in zip(recs, changes, strict=True):
        a, d, name = (rec.split(b"\t", 2) + [b"", b""])[:3]
        if name != path:
            return None
        if a == b"-" and d == b"-":
            got.append((0, 0, True) if old == new else (size(new), size(old), True))
        elif a.isdigit() and d.isdigit():
            got.append((int(a), int(d), False))
        else:
            return None
    return got


def width_from(environ: dict[str, str] | os._Environ[str]) -> int | None:
    """The width git takes for --stat when its stdout is a pipe: COLUMNS when it is a plain
    number above 0, 80 when unset; None (ask git) for anything git may read otherwise."""
    cols = environ.get("COLUMNS")
    if cols is None:
        return 80
    return int(cols) if re.fullmatch(r"[0-9]{1,6}", cols) and int(cols) > 0 else None


def attributes_free(*, root: Path, git_dirs: Iterable[Path], paths: Iterable[bytes],
                    environ: dict[str, str] | os._Environ[str]) -> bool:
    """No gitattributes file git could read for these paths: none in the worktree at their
    directories (any kind of entry there counts), none in the index (a v2/v3 index holds
    each path whole), no info/attributes, no global or system one."""
    home = environ.get("HOME", "")
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    outside = [os.path.join(xdg, "git", "attributes"), "/etc/gitattributes"]
    for d in git_dirs:
        outside.append(os.path.join(d, "info", "attributes"))
    if any(os.path.lexists(p) for p in outside):
        return False
    dirs = {b""}
    for p in paths:
        while b"/" in p:
            p = p.rpartition(b"/")[0]
            if p in dirs:
                break
            dirs.add(p)
    rootb = os.fsencode(root)
    if any(os.path.lexists(os.path.join(rootb, d, b".gitattributes")) for d in dirs):
        return False
    for d in git_dirs:
        try:
            names = os.listdir(d)
            with open(os.path.join(d, "index"), "rb") as f:
                index = f.read()
        except FileNotFoundError:
            continue  # no index yet (or a git dir without one): nothing in it
        except OSError:
            return False
        if any(n.startswith("sharedindex.") for n in names):
            return False
        if index[:4] != b"DIRC" or index[4:8] not in (b"\0\0\0\2", b"\0\0\0\3"):
            return False
        if b".gitattributes" in index:
            return False
    return True


def render(rows: Sequence[Row], *, width: int, color: bool) -> bytes | None:
    """The --stat block of these rows, or None when git's int arithmetic could overflow or a
    name is not ASCII (git measures those in columns of its own)."""
    if not rows or not all(r[0].isascii() for r in rows):
        return None
    add_c, del_c, reset = (GREEN, RED, RESET) if color else ("", "", "")
    max_len = max(len(r[0]) for r in rows)
    max_change = max((a + d for _, a, d, b in rows if not b), default=0)
    bins = [14 + len(str(a)) + len(str(d)) for _, a, d, b in rows if b]
    bin_width = max(bins, default=0)
    number_width = max(len(str(max_change)), 3 if bins else 0)
    width = max(width, 16 + 6 + number_width)
    graph_width = max_change if max_change + 4 > bin_width else bin_width - 4
    name_width = max_len
    if name_width + number_width + 6 + graph_width > width:
        if graph_width > width * 3 // 8 - number_width - 6:
            graph_width = max(width * 3 // 8 - number_width - 6, 6)
        if name_width > width - number_width - 6 - graph_width:
            name_width = width - number_width - 6 - graph_width
        else:
            graph_width = width - number_width - 6 - name_width
    if max_change * max(graph_width, 1) > _INT_MAX or max_change > _INT_MAX:
        return None
    out: list[str] = []
    adds = dels = 0
    for name, added, deleted, binary in rows:
        room, prefix = name_width, ""
        if name_width < len(name):
            prefix, room = "...", name_width - 3
            name = name[len(name) - room:]
            slash = name.find("/")
            if slash >= 0:
                name = name[slash:]
        head = f" {prefix}{name.ljust(room)} |"
        if binary:
            line = f"{head} {'Bin'.rjust(number_width)}"
            if added or deleted:
                line += f" {del_c}{deleted}{reset} -> {add_c}{added}{reset} bytes"
            out.append(line + "\n")
            continue
        adds, dels = adds + added, dels + deleted
        add, dele = added, deleted
        if graph_width <= max_change:
            total = _scale(add + dele, graph_width, max_change)
            if total < 2 and add and dele:
                total = 2
            if add < dele:
                add = _scale(add, graph_width, max_change)
                dele = total - add
            else:
                dele = _scale(dele, graph_width, max_change)
                add = total - dele
        n = added + deleted
        line = f"{head} {str(n).rjust(number_width)}{' ' if n else ''}"
        line += _graph("+", add, add_c, reset) + _graph("-", dele, del_c, reset)
        out.append(line + "\n")
    out.append(_summary(len(rows), adds, dels))
    return "".join(out).encode("ascii")


def _scale(it: int, width: int, max_change: int) -> int:
    return 0 if not it else 1 + (it * (width - 1) // max_change)


def _graph(ch: str, n: int, on: str, off: str) -> str:
    return f"{on}{ch * n}{off}" if n > 0 else ""


def _summary(files: int, ins: int, dels: int) -> str:
    s = f" {files} file{'s' if files != 1 else ''} changed"
    if ins or dels == 0:
        s += f", {ins} insertion{'s' if ins != 1 else ''}(+)"
    if dels or ins == 0:
        s += f", {dels} deletion{'s' if dels != 1 else ''}(-)"
    return s + "\n"
