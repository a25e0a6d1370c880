"""Risk rules: which changes can run code or change behaviour outside the sandbox once applied.

The highest is FOREIGN_GIT: a change after which git, run from some directory of the worktree,
would find a repository or config other than the user's (a spelling of .git, .gitmodules, a
directory shaped like a git dir; see foreign.py for the last). Review lists it first and apply
refuses it always."""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import posixpath
import re
from collections.abc import Sequence
from fnmatch import fnmatchcase

from git_agent import gittree, ui
from git_agent.mergeback.risk_table import RULES

# The highest risk: apply refuses any path with a reason starting so, whatever it is told.
FOREIGN_GIT = "makes git find another repository"


# package.json keys whose change makes npm/yarn run different code.
PACKAGE_JSON_KEYS = {
    "scripts": "package.json scripts: npm runs them",
    "dependencies": "package.json dependencies: installs run their scripts",
    "devDependencies": "package.json dependencies: installs run their scripts",
    "optionalDependencies": "package.json dependencies: installs run their scripts",
    "peerDependencies": "package.json dependencies: installs run their scripts",
    "bin": "package.json bin: commands installed on your PATH",
    "workspaces": "package.json workspaces: more packages whose scripts run",
    "packageManager": "package.json packageManager: which package manager binary corepack runs",
    "config": "package.json config: values passed to scripts",
    "overrides": "package.json overrides: replaced dependencies",
    "resolutions": "package.json resolutions: replaced dependencies",
}

SNIFF_BYTES = 8000  # as git: a NUL in the first 8000 bytes means binary

# Bumped whenever what assess() answers changes other than through the table (the stored
# assessment, assessed.py, is keyed by it and the table).
ASSESS_VERSION = 2


@functools.cache
def version() -> str:
    """This code's and the rule table's version: a stored assessment of another is not used."""
    import hashlib

    table = repr([(r.pattern, r.reason) for r in RULES]).encode("utf-8", "surrogateescape")
    return f"{ASSESS_VERSION}:{SNIFF_BYTES}:{hashlib.sha256(table).hexdigest()}"


def _match(pattern: str, path: str) -> bool:
    p, s = pattern.lower(), path.lower()
    if p.startswith("**/") and p.endswith("/**"):
        d = p[3:-3]
        parts = s.split("/")[:-1]
        return any(fnmatchcase("/".join(parts[i : i + d.count("/") + 1]), d)
                   for i in range(len(parts)))
    if p.endswith("/**"):
        return s.startswith(p[:-2])
    if "/" in p:
        return fnmatchcase(s, p)
    return fnmatchcase(s.rsplit("/", 1)[-1], p)


def _literal(p: str) -> bool:
    return not any(c in p for c in "*?[")


@functools.cache
def _table() -> tuple[dict[str, list[int]], list[tuple[int, str]], list[tuple[int, str]]]:
    """RULES sorted for speed (apply checks every path): literal file names by name, literal
    `**/DIR/**` rules as "/DIR/", the rest matched one by one."""
    names: dict[str, list[int]] = {}
    dirs: list[tuple[int, str]] = []
    rest: list[tuple[int, str]] = []
    for i, rule in enumerate(RULES):
        p = rule.pattern.lower()
        if "/" not in p and _literal(p):
            names.setdefault(p, []).append(i)
        elif p.startswith("**/") and p.endswith("/**") and _literal(p[3:-3]):
            dirs.append((i, "/" + p[3:-3] + "/"))
        else:
            rest.append((i, rule.pattern))
    return names, dirs, rest


@functools.cache
def _rest_filter() -> re.Pattern[str]:
    """One regex that matches (the lowered path) wherever one of the table's other rules may
    match: most paths match none, and one search is cheaper than a rule at a time."""
    alts = []
    for _, pattern in _table()[2]:
        p = pattern.lower()
        if p.startswith("**/") and p.endswith("/**"):
            alts.append(".*")  # matched rule by rule
        elif p.endswith("/**"):
            alts.append(re.escape(p[:-2]) + ".*")
        elif "/" in p:
            alts.append(fnmatch.translate(p))
        else:
            alts.append("(?:.*/)?" + fnmatch.translate(p))
    return re.compile("|".join(f"(?:{a})" for a in alts) or "(?!)", re.S)


@functools.cache
def _dir_filter() -> re.Pattern[str]:
    """One regex for every literal `**/DIR/**` rule (as "/DIR/"): most paths are in none."""
    dirs = _table()[1]
    return re.compile("|".join(re.escape(d) for _, d in dirs) or "(?!)")


@functools.cache
def _any_rule() -> re.Pattern[str]:
    """One regex over the lowered path that matches wherever some rule of the table may (the
    literal names, the literal `**/DIR/**` rules, the rest as _rest_filter): a path it does not
    match gets no reason from the table, and most paths match none."""
    names, dirs, _ = _table()
    alts = [_rest_filter().pattern]
    if names:
        alts.append("(?:.*/)?(?:" + "|".join(re.escape(n) for n in names) + r")\Z")
    if dirs:  # "/DIR/" in "/" + the path's parent: DIR/ at the start or after a "/"
        alts.append("(?:.*/)?(?:" + "|".join(re.escape(d[1:]) for _, d in dirs) + ")")
    return re.compile("|".join(f"(?:{a})" for a in alts), re.S)


def path_risks(path: str) -> list[str]:
    """Reasons the path itself is sensitive, from the table (whatever its content)."""
    low = path.lower()
    if _any_rule().match(low) is None:
        return []
    names, dirs, rest = _table()
    parent, _, name = low.rpartition("/")
    above = "/" + parent + "/"
    maybe = _rest_filter().match(low) is not None
    in_dir = _dir_filter().search(above) is not None
    hits = [*names.get(name, ()), *(i for i, d in dirs if in_dir and d in above),
            *(i for i, pattern in rest if maybe and _match(pattern, path))]
    out: list[str] = []
    for i in sorted(hits):
        if RULES[i].reason not in out:
            out.append(RULES[i].reason)
    return out


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:SNIFF_BYTES]


def symlink_risk(path: str, target: bytes) -> str | None:
    """Why a link at `path` is risky: absolute, pointing outside the worktree or into .git."""
    t = target.decode(errors="replace")
    shown = ui.quote_path(target)
    if t.startswith("/"):
        return f"symlink to an absolute path: {shown}"
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), t))
    if joined == ".." or joined.startswith("../"):
        return f"symlink pointing outside the repository: {shown}"
    if any(gittree.is_dotgit(os.fsencode(c)) for c in joined.split("/")):  # .GIT, git~1 too
        return f"symlink into .git: {shown}"
    return None


_dotgit = functools.lru_cache(maxsize=1 << 14)(gittree.is_dotgit)  # dir names recur
_dotgitmodules = functools.lru_cache(maxsize=1 << 14)(gittree.is_dotgitmodules)


def foreign_name(path: bytes) -> str | None:
    """FOREIGN_GIT for a path holding a spelling of .git (a repository or gitfile git would
    follow: .GIT, git~1, NTFS/HFS spellings) or of .gitmodules, at any depth."""
    if path.isascii() and b"~" not in path and b"git" not in path.lower():
        return None  # as is_dotgit/is_dotgitmodules answer for each of its components
    parts = path.split(b"/")
    if any(_dotgit(p) for p in parts):
        return f"{FOREIGN_GIT}: a .git entry (a nested repository or gitfile git follows)"
    if any(_dotgitmodules(p) for p in parts):
        return f"{FOREIGN_GIT}: .gitmodules (submodules git clones, fetches and enters)"
    return None


HOOKS = ("git hooks directory of this repository (core.hooksPath) or a hook linked from it: "
         "runs on commit and push")


def hooks_risk(path: bytes, hooks: Sequence[bytes]) -> str | None:
    """HOOKS for a path under a hooks dir git uses for this worktree (`hooks`: each a path from
    the worktree root, b"" for the root itself), or above one (a file or link there replaces
    the directory). Case is ignored, as in the table."""
    return HOOKS if _at_or_around(path, hooks) else None


CONFIG_INCLUDED = ("a git config file your configuration includes (include.path): git runs "
                   "what it sets (core.fsmonitor, aliases, hooksPath)")


def included_config_risk(path: bytes, files: Sequence[bytes]) -> str | None:
    """CONFIG_INCLUDED for a file of the worktree that the user's git config includes (`files`:
    each a path from the worktree root), or for what replaces a directory above one."""
    return CONFIG_INCLUDED if _at_or_around(path, files) else None


NAMED = "a program or file your git config names ({keys}): git runs or reads it"


class ConfigNamed:
    """The worktree's paths that values of the user's git config name, indexed by path so that
    each change costs one look-up per directory level (apply checks every path).

    A whole value names its path, what is under it (a directory git reads, init.templateDir)
    and the directories above it (a file or link there replaces the way to it); a word of a
    command names its path and the directories above it only."""

    def __init__(self, names: Sequence[tuple[bytes, str, bool]] = ()) -> None:
        """names: (path from the worktree root, the key, whether it is the whole value)."""
        self._at: dict[bytes, list[str]] = {}  # the path and every directory above it
        self._under: dict[bytes, list[str]] = {}  # whole values: everything under them too
        for path, key, whole in names:
            p = path.lower()
            parts = p.split(b"/")
            for i in range(1, len(parts) + 1):
                keys = self._at.setdefault(b"/".join(parts[:i]), [])
                if key not in keys:
                    keys.append(key)
            if whole and key not in self._under.setdefault(p, []):
                self._under[p].append(key)

    def fingerprint(self) -> str:
        """Every path and key this answers from, in a stable order."""
        return repr((sorted(self._at.items()), sorted(self._under.items())))

    def keys(self, path: bytes) -> list[str]:
        """The keys whose values name this path (as a path from the worktree root)."""
        p = path.lower()
        if p.partition(b"/")[0] not in self._at:
            return []  # every path it names, and every prefix of one, starts with one of these
        out = list(self._at.get(p, ()))
        parts = p.split(b"/")
        for i in range(1, len(parts)):
            out.extend(k for k in self._under.get(b"/".join(parts[:i]), ()) if k not in out)
        return out


def config_named_risk(path: bytes, named: ConfigNamed) -> str | None:
    """NAMED, with the keys, for a path that a value of the user's git config names."""
    keys = named.keys(path)
    return NAMED.format(keys=", ".join(keys)) if keys else None


def _at_or_around(path: bytes, places: Sequence[bytes]) -> bool:
    """path is one of places, under one, or above one (b"" is the worktree root itself)."""
    p = path.lower()
    return any(not d or p == d or p.startswith(d + b"/") or d.startswith(p + b"/")
               for d in (x.lower() for x in places))


def package_json_risks(old: bytes | None, new: bytes | None) -> list[str]:
    """Reasons from the keys that differ between two package.json versions (or a parse error)."""

    def load(data: bytes | None) -> dict[str, object]:
        if data is None:
            return {}
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise ValueError("not an object")
        return obj

    try:
        a, b = load(old), load(new)
    except (ValueError, UnicodeDecodeError):
        return ["package.json that does not parse: npm may read it differently"]
    out: list[str] = []
    for key, reason in PACKAGE_JSON_KEYS.items():
        if a.get(key) != b.get(key) and reason not in out:
            out.append(reason)
    return out


def assess(
    *,
    path: str,
    old_mode: int,
    new_mode: int,
    old_data: bytes | None = None,
    new_data: bytes | None = None,
    hooks: Sequence[bytes] = (),
    configs: Sequence[bytes] = (),
    named: ConfigNamed | None = None,
) -> list[str]:
    """Every reason this change is risky, most specific first; [] for a plain edit.

    `old_mode`/`new_mode` are git modes (0 when absent); `*_data` the blob contents (a link's
    target for mode 120000), None when absent or not loaded; `hooks` the worktree's hooks dirs
    (user_config.read_config: core.hooksPath); `configs` the files of it that its git config
    includes; `named` the paths that the other values of its git config name.
    """
    out: list[str] = []
    name = path.rsplit("/", 1)[-1]
    bpath = os.fsencode(path)
    foreign = foreign_name(bpath) if new_mode else None
    if foreign:
        out.append(foreign)
    hook = hooks_risk(bpath, hooks) if hooks else None
    if hook:
        out.append(hook)
    included = included_config_risk(bpath, configs) if configs else None
    if included:
        out.append(included)
    by_value = config_named_risk(bpath, named) if named is not None else None
    if by_value:
        out.append(by_value)
    if new_mode == gittree.LINK and new_data is not None:
        r = symlink_risk(path, new_data)
        if r:
            out.append(r)
    if new_mode == gittree.EXEC and old_mode != gittree.EXEC:
        out.append("becomes executable" if old_mode else "new executable file")
    if new_mode == gittree.GITLINK:
        out.append("submodule commit: code fetched from elsewhere")
    if new_mode in (gittree.BLOB, gittree.EXEC) and new_data is not None and is_binary(new_data):
        out.append("binary file: cannot be reviewed as text")
    if name.lower() == "package.json" and new_mode != gittree.LINK:
        out.extend(r for r in package_json_risks(old_data, new_data) if r not in out)
    out.extend(r for r in path_risks(path) if r not in out)
    return out
