"""git's ignore rules for new paths: pathspec's gitignore patterns, matched by re2 (linear time).

Sources as git reads them: the .gitignore of every directory (deeper files win over shallower
ones), then info/exclude, then core.excludesFile; within a file the last match wins, and
nothing inside an ignored directory can be re-included (git never reads its .gitignore).

pathspec (GitIgnoreSpecPattern) turns each line into a regular expression; re2 matches a
whole file's set of them at once, in time linear in the name, whatever the patterns. Its
GitIgnoreSpec.check_file is not used: it answers "is this file under a matching path", which
differs from git for `build/` then `!build/keep` (git: ignored) or `x/**/`; here each pattern
is made to match exactly one path (a file, or a directory), and the directories of a path are
checked from the top, as git's walk does. Names and patterns are bytes, matched byte for byte
as git's wildmatch does (read as Latin-1: one byte, one character). Bracket expressions are
rewritten first into a form pathspec and re2 read as wildmatch does (backslash escapes, POSIX
classes, never '/'). A line git never matches with (an unclosed bracket, a trailing
backslash) is dropped. The re2 wheel (google-re2) is required: there is no fall-back to a
backtracking engine, on which `*a*a*a*a*a*a*b` against a long name runs for hours.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import re2  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - google-re2 is a dependency
    re2 = None
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from git_agent import proc
from git_agent.errors import GitAgentError

_CLASSES: dict[str, str] = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "blank": " \t", "cntrl": "\x00-\x1f\x7f",
    "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
    "punct": "!-/:-@[-`{-~", "space": " \t\n\r\f\v", "upper": "A-Z", "xdigit": "0-9A-Fa-f",
}


def _ranges(spec: str) -> list[tuple[int, int]]:
    """A POSIX class body from _CLASSES as (low, high) code point ranges."""
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.append((ord(spec[i]), ord(spec[i + 2])))
            i += 3
        else:
            out.append((ord(spec[i]), ord(spec[i])))
            i += 1
    return out


def _parse_bracket(pat: str, i: int) -> tuple[bool, list[tuple[int, int]], int] | None:
    """wildmatch's reading of the bracket at pat[i] == '[': (negated, ranges, end), or None
    when it never closes (git then matches nothing with the whole pattern)."""
    j = i + 1
    negated = j < len(pat) and pat[j] in "!^"
    if negated:
        j += 1
    items: list[tuple[int, int]] = []
    first = True
    while j < len(pat):
        c = pat[j]
        if c == "]" and not first:
            return negated, items, j + 1
        first = False
        if c == "[" and pat.startswith("[:", j):
            end = pat.find(":]", j + 2)
            if end == -1:
                return None
            name = pat[j + 2 : end]
            if name not in _CLASSES:
                return None  # git: an unknown class aborts the match
            items += _ranges(_CLASSES[name])
            j = end + 2
            continue
        if c == "\\":
            j += 1
            if j >= len(pat):
                return None
            c = pat[j]
        lo = ord(c)
        j += 1
        if j + 1 < len(pat) and pat[j] == "-" and pat[j + 1] != "]":
            hi_c = pat[j + 1]
            j += 2
            if hi_c == "\\":
                if j >= len(pat):
                    return None
                hi_c = pat[j]
                j += 1
            # wildmatch compares the low end alone first: [z-a] still matches z
            items.append((lo, max(lo, ord(hi_c))))
            continue
        items.append((lo, lo))
    return None


_FIRST = "\u0100"  # never in a name (names are read as Latin-1): a safe first member
_SPECIAL = frozenset(map(ord, "]-[/"))


def _emit_bracket(negated: bool, items: list[tuple[int, int]]) -> str | None:
    """A bracket pathspec hands to the regex engine meaning exactly what wildmatch does with
    (negated, items) on one byte, never '/' (pathspec would split the pattern there); None
    when it matches nothing. Always positive: a negation is spelled as its complement."""
    codes: set[int] = set()
    for lo, hi in items:
        codes.update(range(lo, hi + 1))
    if negated:
        codes = set(range(1, 256)) - codes
    codes.discard(ord("/"))
    if not codes:
        return None
    out = ["[", "]" if ord("]") in codes else "", _FIRST]  # ']' first, then never '^' first
    run: list[int] = []
    for c in [*sorted(codes - _SPECIAL), -1]:
        if run and c != run[-1] + 1:
            out.append(f"{chr(run[0])}-{chr(run[-1])}" if len(run) > 2
                       else "".join(map(chr, run)))
            run = []
        run.append(c)
    out += ["[" if ord("[") in codes else "", "-" if ord("-") in codes else "", "]"]
    return "".join(out)


def _rewrite(line: str) -> str | None:
    """One pattern line with its brackets in the form pathspec reads as git does; None for a
    line git never matches with."""
    out: list[str] = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\":
            if i + 1 >= len(line):
                return None  # a trailing backslash: wildmatch never matches
            out.append(line[i : i + 2])
            i += 2
        elif c == "[":
            got = _parse_bracket(line, i)
            if got is None:
                return None
            negated, items, i = got
            emitted = _emit_bracket(negated, items)
            if emitted is None:
                return None
            out.append(emitted)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _lines(data: bytes) -> list[str]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    out = []
    for raw in data.split(b"\n"):
        line = raw.decode("latin-1")
        if line.endswith("\r"):
            line = line[:-1]  # git drops a CR before the LF
        if not line or line.startswith("#"):
            out.append(line)
            continue
        got = _rewrite(line)
        if got is not None:
            out.append(got)
    return out


_OPT = "(?:(?P<ps_d>/)|$)"  # pathspec: the path, or a directory above what is asked
_DIR = "(?P<ps_d>/)"  # pathspec: a directory (pattern ending in '/')


def _exact(line: str) -> tuple[str, bool, bool] | None:
    """One pattern line as (a regex matching exactly the paths git's pattern matches,
    include, dir only); None for a blank line, a comment or a line git never matches."""
    try:
        regex, include = GitIgnoreSpecPattern.pattern_to_regex(line)
    except ValueError:
        return None
    if include is None or not isinstance(regex, str):
        return None
    body = line[1:] if line.startswith("!") else line
    body = body.rstrip(" ")
    inside = body.rstrip("/").endswith("/**")  # x/** and x/**/: below x, never x itself
    if regex == ".":  # * and **
        return "^.+$", include, False
    if regex == _DIR:  # **/ and */
        return "^.+$", include, True
    if regex == "/":  # */**
        return "^[^/]+/.+$", include, False
    if regex.endswith(_OPT):
        return regex[: -len(_OPT)] + "$", include, False
    if regex.endswith(_DIR):
        head = regex[: -len(_DIR)]
        return head + ("/.+$" if inside else "$"), include, True
    if regex.endswith("/"):  # x/**
        return regex + ".+$", include, False
    return None  # no other form comes out of pathspec: a line not understood matches nothing


_CHUNK = 256  # patterns per re2 set: a bigger set may pass re2's memory budget


class _Spec:
    """The patterns of one ignore file as re2 sets (one per _CHUNK lines; a chunk re2 cannot
    compile as a set is split down to single patterns, so any file size works)."""

    def __init__(self, pats: list[tuple[str, bool, bool]]):
        self.include = [p[1] for p in pats]
        self.dir_only = [p[2] for p in pats]
        self.sets: list[tuple[list[int], Any]] = []  # (pattern index of each member, the set)
        todo = [list(range(i, min(i + _CHUNK, len(pats)))) for i in range(0, len(pats), _CHUNK)]
        while todo:
            chunk = todo.pop()
            got = _set([pats[i][0] for i in chunk])
            if got is not None:
                self.sets.append(([chunk[n] for n in got[1]], got[0]))
            elif len(chunk) > 1:
                half = len(chunk) // 2
                todo += [chunk[:half], chunk[half:]]
            # else: one pattern re2 cannot compile: git's line then matches nothing here

    def match(self, rel: str, is_dir: bool) -> bool | None:
        """The last pattern matching rel: True to ignore, False to re-include; None: none."""
        best = -1
        for members, one in self.sets:
            for k in one.Match(rel) or []:
                i = members[k]
                if i > best and (is_dir or not self.dir_only[i]):
                    best = i
        return self.include[best] if best >= 0 else None


def _set(regexes: list[str]) -> tuple[Any, list[int]] | None:
    """One re2 set matching any of regexes that re2 accepts, with the position in regexes
    of each of its members; None when re2 cannot build it."""
    one = re2.Set.SearchSet(_options())
    members = []
    for n, regex in enumerate(regexes):
        try:
            one.Add(regex)
        except re2.error:  # noqa: PERF203 - a regex re2 refuses: the line is dropped
            continue
        members.append(n)
    try:
        one.Compile()
    except re2.error:
        return None
    return one, members


def _options() -> Any:
    opts = re2.Options()
    opts.log_errors = False
    opts.never_capture = True
    opts.dot_nl = True  # a name may hold a newline
    return opts


def _compile(data: bytes) -> _Spec | None:
    """One ignore file's patterns, or None when it has none."""
    pats = []
    for line in _lines(data):
        got = _exact(line)
        if got is not None:
            pats.append(got)
    return _Spec(pats) if pats else None


class IgnoreEngineMissing(GitAgentError):
    """re2 (the google-re2 wheel) cannot be loaded: capture refuses rather than backtrack."""


# Reads the .gitignore of a directory ('' for the top, else b'a/b') as the agent left it.
Loader = Callable[[bytes], bytes | None]


class Rules:
    """The ignore stack of one worktree; .gitignore files are loaded lazily, once per dir."""

    def __init__(self, *, load_gitignore: Loader, exclude: bytes):
        if re2 is None:  # pragma: no cover - google-re2 is a dependency
            raise IgnoreEngineMissing(
                "cannot match .gitignore patterns in linear time: the google-re2 wheel is "
                "missing (pip install google-re2); nothing was captured, the session is intact")
        self._load = load_gitignore
        # core.excludesFile then info/exclude: one file, the later lines win
        self._exclude = _compile(exclude) if exclude else None
        self._per_dir: dict[bytes, _Spec | None] = {}
        self._dir_ignored: dict[bytes, bool] = {}

    def _spec_for(self, d: bytes) -> _Spec | None:
        if d not in self._per_dir:
            data = self._load(d)
            self._per_dir[d] = _compile(data) if data else None
        return self._per_dir[d]

    def _match(self, path: bytes, is_dir: bool) -> bool:
        """Does the last matching pattern ignore path itself (ancestors not considered)?"""
        parts = path.split(b"/")
        # deepest .gitignore first, then the root one, then info/exclude, excludesFile
        for k in range(len(parts) - 1, -1, -1):
            spec = self._spec_for(b"/".join(parts[:k]))
            if spec is not None:
                got = spec.match(b"/".join(parts[k:]).decode("latin-1"), is_dir)
                if got is not None:
                    return got
        if self._exclude is not None:
            got = self._exclude.match(path.decode("latin-1"), is_dir)
            if got is not None:
                return got
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


def host_excludes(*, root: Path, common_dir: Path) -> bytes:
    """The patterns every directory sees, as one file: core.excludesFile, then
    .git/info/exclude (later lines win)."""
    out = b""
    for source in (excludes_file(cwd=root), common_dir / "info" / "exclude"):
        data = _read(source) if source else None
        if data:
            data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
            out += (data if data.endswith(b"\n") else data + b"\n")
    return out
