"""The sandbox seen from outside: where a path inside comes from, and the agent's command found
as the sandbox will find it (its PATH, its mounts), before anything is created."""

from __future__ import annotations

import os
from pathlib import Path

from git_agent.record import Record
from git_agent.sandbox.system import PRIVATE_TMPFS, SYSTEM_DIRS, SYSTEM_LINKS

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from collections.abc import Iterable


class View(Record):
    """Inside path prefixes and where each comes from outside (None: an empty tmpfs)."""

    __slots__ = ("places",)

    def __init__(self, places: list[tuple[Path, Path | None]]):
        # longest first: the most specific mount wins, as bwrap stacks them
        self.places = sorted(places, key=lambda p: len(p[0].parts), reverse=True)

    def outside(self, inside: Path) -> Path | None:
        """The host path showing at `inside` (absolute, normal), None when nothing does."""
        for dest, src in self.places:
            if inside == dest or dest in inside.parents:
                return None if src is None else src / inside.relative_to(dest)
        return None


def view(*, home: Path, agent_home: Path, home_mounts: Iterable[Path], worktree: Path,
         extra: Iterable[tuple[Path, Path]] = ()) -> View:
    """What `build_plan` mounts, as far as finding programs goes: system dirs, the agent home at
    $HOME, real-home mounts at their own path, the worktree; /tmp, /run are empty."""
    places: list[tuple[Path, Path | None]] = [(Path(d), Path(d)) for d in SYSTEM_DIRS]
    places += [(Path(d), Path(d)) for d in SYSTEM_LINKS]
    places += [(Path(d), None) for d in PRIVATE_TMPFS]
    places += [(home, agent_home), (worktree, worktree)]
    places += [(p, p) for p in home_mounts]
    places += list(extra)
    return View(places)


def _executable(v: View, inside: Path) -> Path | None:
    """The file `inside` runs (symlinks followed as the sandbox sees them), if it can run."""
    p = Path(os.path.normpath(inside))
    for _ in range(40):
        out = v.outside(p)
        if out is None:
            return None
        if not out.is_symlink():
            return out if out.is_file() and os.access(out, os.X_OK) else None
        target = Path(os.readlink(out))
        p = Path(os.path.normpath(target if target.is_absolute() else p.parent / target))
    return None


def which(v: View, word: str, *, path: str, cwd: Path) -> Path | None:
    """The inside path a shell would run for `word` (PATH searched in order), None if none."""
    if "/" in word:
        p = Path(word) if word.startswith("/") else cwd / word
        return p if _executable(v, p) else None
    for d in path.split(":"):
        base = Path(d) if d.startswith("/") else cwd / d  # "" is the current directory
        if _executable(v, base / word):
            return base / word
    return None


def interpreter(v: View, inside: Path) -> list[str]:
    """A script's `#!` line, as words (`#!/usr/bin/env node` -> [/usr/bin/env, node])."""
    out = v.outside(inside)
    try:
        with open(out or inside, "rb") as f:
            head = f.read(256)
    except OSError:
        return []
    if not head.startswith(b"#!"):
        return []
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if len(words) >= 2 and os.path.basename(words[0]) == "env":
        args = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        return [words[0], *args[:1]]
    return words[:1]


def names_on_path(v: View, path: str) -> set[str]:
    """Every program name the PATH inside offers (for a "did you mean")."""
    names: set[str] = set()
    for d in path.split(":"):
        if not d.startswith("/"):
            continue
        out = v.outside(Path(os.path.normpath(d)))
        if out is None:
            continue
        try:
            names.update(os.listdir(out))
        except OSError:
            continue
    return names


def missing_command(v: View, command: list[str], *, path: str, cwd: Path,
                    install: str = "", known: Iterable[str] = (),
                    host_path: str | None = None) -> str | None:
    """Why `command` cannot start inside (not found, or its `#!` interpreter is not), with the
    fix: the preset's install line, the nearest name (did you mean), or the mount it needs.
    None when it will start."""
    word = command[0] if command else ""
    if not word:
        return "no command to run (agent.command is empty and SHELL is unset)"
    found = which(v, word, path=path, cwd=cwd)
    if found is not None:
        interp = interpreter(v, found)
        if not interp:
            return None
        prog = interp[-1]
        if which(v, prog, path=path, cwd=cwd) is not None:
            return None
        what = f"{word}: its interpreter {prog} is not found inside the sandbox (PATH {path})"
        return what + _outside_hint(prog, host_path)
    why = f"{word}: not found inside the sandbox (PATH {path})"
    if install:
        return f"{why}. Install: {install}{_outside_hint(word, host_path)}"
    if "/" not in word:
        near = nearest(word, known) or nearest(word, names_on_path(v, path))
        if near:
            return f"{why}; did you mean {near}?"
    return why + _outside_hint(word, host_path)


def nearest(word: str, names: Iterable[str]) -> str | None:
    """The name one typo away (a letter added, dropped, changed, or two swapped; two for a
    long word), the first in sorted order among the closest; None if none is that close."""
    limit = 1 if len(word) < 8 else 2
    best: tuple[int, str] | None = None
    for name in names:
        if name == word or abs(len(name) - len(word)) > limit:
            continue
        d = _typos(word, name)
        if d <= limit and (best is None or (d, name) < best):
            best = (d, name)
    return best[1] if best else None


def _typos(a: str, b: str) -> int:
    """Optimal string alignment distance: edits, with a swap of neighbours as one."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _outside_hint(word: str, host_path: str | None) -> str:
    """Where the program is on the host, when it is there but not inside (not mounted)."""
    if host_path is None or "/" in word:
        return ""
    import shutil

    host = shutil.which(word, path=host_path)
    if host is None:
        return ""
    return (f" (outside it is {host}, which the sandbox does not show: mount its directory, "
            f"--mount {os.path.dirname(host)}, or install it under a mounted one)")
