"""git's ignore rules for new paths: per-directory .gitignore, info/exclude, core.excludesFile.

Patterns follow gitignore(5) and git's wildmatch: last match wins, deeper files win over
shallower ones, .gitignore over info/exclude over core.excludesFile, and nothing inside an
ignored directory can be re-included. Paths are bytes; patterns are matched as
surrogate-escaped text so any name works.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from git_agent import proc

_CLASSES = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "blank": " \\t", "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
    "punct": "!-/:-@\\[-`{-~", "space": " \\t\\n\\r\\f\\v", "upper": "A-Z", "xdigit": "0-9a-fA-F",
}


def _bracket(pat: str, i: int) -> tuple[str, int] | None:
    """Translate the bracket expression starting at pat[i] == '['; None when unclosed."""
    j = i + 1
    negate = j < len(pat) and pat[j] in "!^"
    if negate:
        j += 1
    parts: list[str] = []
    first = True
    while j < len(pat):
        c = pat[j]
        if c == "]" and not first:
            body = "".join(parts) or "^\\s\\S"
            return ("[^/" + body + "]" if negate else "(?!/)[" + body + "]"), j + 1
        first = False
        if c == "[" and pat.startswith("[:", j):
            end = pat.find(":]", j + 2)
            if end != -1 and pat[j + 2 : end] in _CLASSES:
                parts.append(_CLASSES[pat[j + 2 : end]])
                j = end + 2
                continue
        if c == "\\" and j + 1 < len(pat):
            j += 1
            c = pat[j]
        if j + 2 < len(pat) and pat[j + 1] == "-" and pat[j + 2] != "]":
            hi = pat[j + 2]
            if hi == "\\" and j + 3 < len(pat):
                hi = pat[j + 3]
                j += 1
            parts.append(re.escape(c) + "-" + re.escape(hi))
            j += 3
            continue
        parts.append(re.escape(c))
        j += 1
    return None


def translate(pat: str) -> str:
    """A gitignore glob (no leading '!' or '/', no trailing '/') as a full-match regex."""
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "*":
            j = i
            while j < n and pat[j] == "*":
                j += 1
            if j - i >= 2 and (i == 0 or pat[i - 1] == "/") and (j == n or pat[j] == "/"):
                if j == n:
                    out.append(".*")  # trailing /**: everything inside
                else:
                    out.append("(?:.*/)?")  # **/: zero or more directories
                    j += 1
            else:
                out.append("[^/]*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            got = _bracket(pat, i)
            if got is None:
                out.append(re.escape(c))
                i += 1
            else:
                out.append(got[0])
                i = got[1]
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pat[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Pattern:
    text: str  # the line as written, for messages
    regex: re.Pattern[str]
    negative: bool
    dir_only: bool
    basename: bool  # no '/' in the pattern: matched against the last component only
    base: str  # the directory of the file it came from, '' or 'a/b/'

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if not path.startswith(self.base):
            return False
        rel = path[len(self.base) :]
        if self.basename:
            rel = rel.rpartition("/")[2]
        return self.regex.fullmatch(rel) is not None


def _trim_trailing_spaces(line: str) -> str:
    end = len(line)
    while end > 0 and line[end - 1] == " ":
        # a space escaped by an odd number of backslashes stays
        k = end - 1
        slashes = 0
        while k > 0 and line[k - 1] == "\\":
            slashes += 1
            k -= 1
        if slashes % 2:
            break
        end -= 1
    return line[:end]


def parse(data: bytes, *, base: str = "") -> list[Pattern]:
    """The patterns of one ignore file whose directory is base ('' or 'dir/')."""
    out: list[Pattern] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for raw in data.split(b"\n"):
        line = _trim_trailing_spaces(raw.decode("utf-8", "surrogateescape"))
        if not line or line.startswith("#"):
            continue
        text = line
        negative = line.startswith("!")
        if negative:
            line = line[1:]
        dir_only = line.endswith("/")
        if dir_only:
            line = line.rstrip("/")
        if not line:
            continue
        basename = "/" not in line
        line = line.lstrip("/") if not basename else line
        out.append(Pattern(text=text, regex=re.compile(translate(line), re.DOTALL),
                           negative=negative, dir_only=dir_only, basename=basename, base=base))
    return out


# Reads the .gitignore of a directory ('' for the top, else b'a/b') as the agent left it.
Loader = Callable[[bytes], bytes | None]


class Rules:
    """The ignore stack of one worktree; .gitignore files are loaded lazily, once per dir."""

    def __init__(self, *, load_gitignore: Loader, exclude: list[Pattern]):
        self._load = load_gitignore
        self._exclude = exclude  # core.excludesFile then info/exclude, in priority order
        self._per_dir: dict[bytes, list[Pattern]] = {}
        self._dir_ignored: dict[bytes, bool] = {}

    def _patterns_for(self, d: bytes) -> list[Pattern]:
        got = self._per_dir.get(d)
        if got is None:
            data = self._load(d)
            base = os.fsdecode(d) + "/" if d else ""
            got = parse(data, base=base) if data else []
            self._per_dir[d] = got
        return got

    def _match(self, path: bytes, is_dir: bool) -> bool:
        """Does the last matching pattern ignore path itself (ancestors not considered)?"""
        text = os.fsdecode(path)
        parts = path.split(b"/")
        # deepest .gitignore first, then the root one, then info/exclude, excludesFile
        stacks = [self._patterns_for(b"/".join(parts[:k])) for k in range(len(parts) - 1, -1, -1)]
        stacks.append(self._exclude)
        for stack in stacks:
            for pat in reversed(stack):
                if pat.matches(text, is_dir):
                    return not pat.negative
        return False

    def dir_ignored(self, d: bytes) -> bool:
        """Is the directory d (or one of its parents) ignored? (Top down, no recursion.)"""
        got = self._dir_ignored.get(d)
        if got is not None:
            return got
        parts = d.split(b"/")
        above = False
        for k in range(1, len(parts) + 1):
            here = b"/".join(parts[:k])
            known = self._dir_ignored.get(here)
            if known is None:
                known = above or self._match(here, True)
                self._dir_ignored[here] = known
            above = known
        return above

    def ignored(self, path: bytes, *, is_dir: bool = False) -> bool:
        """Would git leave the untracked path out of `git add -A`?"""
        parent = path.rpartition(b"/")[0]
        if parent and self.dir_ignored(parent):
            return True
        return self._match(path, is_dir)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def excludes_file(*, cwd: Path) -> Path | None:
    """core.excludesFile, else $XDG_CONFIG_HOME/git/ignore, else ~/.config/git/ignore."""
    p = proc.run(["git", "config", "--path", "--get", "core.excludesFile"], cwd=cwd,
                 env=proc.no_git_env(), check=False)
    value = p.stdout.decode(errors="surrogateescape").strip()
    if p.returncode == 0 and value:
        return Path(os.path.expanduser(value))
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "git" / "ignore"
    return Path.home() / ".config" / "git" / "ignore"


def host_excludes(*, root: Path, common_dir: Path) -> list[Pattern]:
    """The patterns every directory sees: core.excludesFile, then .git/info/exclude."""
    pats: list[Pattern] = []
    glob = excludes_file(cwd=root)
    for source in (glob, common_dir / "info" / "exclude"):
        data = _read(source) if source else None
        if data:
            pats.extend(parse(data))
    return pats
