"""The user's git config as review and apply read it: the worktree paths it names (the hooks
dir, files read as config, any value that looks like a path), which a session must not write
unflagged."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from git_agent import proc
from git_agent.mergeback import risks
from git_agent.repo import Worktree


@dataclass(frozen=True)
class GitConfig:
    """What the user's effective git config says about the worktree's own files."""

    hooks: tuple[bytes, ...] = ()  # the hooks dir git uses, if in the worktree (b"" the root)
    configs: tuple[bytes, ...] = ()  # files git reads as config (include.path, includeIf)
    named: risks.ConfigNamed = field(default_factory=risks.ConfigNamed)  # any other value
    keys: frozenset[str] = frozenset()  # every key set, lower case (diffstat.CONFIG reads them)


def read_config(worktree: Worktree) -> GitConfig:
    """The user's git config (every scope, as git reads it: `git config --list --show-origin`,
    one call), turned into the worktree paths it names; paths under the git dir are left out
    (no branch holds them).

    core.hooksPath: the hooks dir (`~` expanded, relative to the worktree root; the default is
    under .git). include.path / includeIf.*.path, and every file git read config from: config.
    Every other value, whatever its key, is taken as a path (relative to the worktree root,
    `~` expanded), and so is each word of it (a command: `!tools/x.sh`, `sh tools/c.sh %f`),
    save the worktree root itself: a value that only looks like a path adds a risk line, a key
    missing from some list never hides one."""
    out = proc.git("config", "--list", "--show-origin", "-z", cwd=worktree.root, check=False)
    fields = out.split(b"\0")
    root = os.fsencode(worktree.root)
    hooks: list[bytes] = []
    configs: list[bytes] = []
    named: list[tuple[bytes, str, bool]] = []
    keys: set[str] = set()
    for origin, entry in zip(fields[::2], fields[1::2], strict=False):
        key_b, _, value = entry.partition(b"\n")
        key = key_b.decode(errors="replace")
        where = origin[len(b"file:"):] if origin.startswith(b"file:") else None
        if where is not None:
            configs.append(where)
        low = key.lower()
        keys.add(low)
        if low == "core.hookspath":
            hooks = [_expand(value)] if value else []  # the last one wins, as in git
        elif low == "include.path" or (low.startswith("includeif.") and low.endswith(".path")):
            here = os.path.dirname(os.path.join(root, where)) if where is not None else root
            configs.append(os.path.join(here, _expand(value)))  # as git: from the file's dir
        elif value:
            named.append((_expand(value), key, True))
            named.extend((_expand(w), key, False) for w in _words(value))
    git_dirs = {os.path.realpath(os.fsencode(d)) for d in (worktree.git_dir, worktree.common_dir)}

    def kept(paths: Sequence[bytes]) -> list[bytes]:
        return [p for p in _in_worktree(worktree, paths)
                if not any(os.path.realpath(os.path.join(root, p)).startswith(g + b"/")
                           or os.path.realpath(os.path.join(root, p)) == g for g in git_dirs)]

    found: list[tuple[bytes, str, bool]] = []
    for path, key, whole in named:
        found.extend((p, key, whole) for p in kept([path]) if p)
    in_tree = _in_worktree(worktree, hooks)
    top = os.path.realpath(root)  # the hops are paths with no link before their last part
    linked = [b"" if p == top else os.path.relpath(p, top) for p in _linked_hooks(
        os.path.join(root, hooks[0]) if hooks
        else os.path.join(os.fsencode(worktree.common_dir), b"hooks"))
        if (p == top or p.startswith(top + b"/")) and not any(
            p == g or p.startswith(g + b"/") for g in git_dirs)]
    return GitConfig(hooks=in_tree + tuple(p for p in linked if not any(  # new places only
        not d or p == d or p.startswith(d + b"/") for d in in_tree)),
                     configs=tuple(kept(configs)), named=risks.ConfigNamed(found),
                     keys=frozenset(keys))


def _linked_hooks(hooks_dir: bytes) -> list[bytes]:
    """Every path on the way from the hooks dir git uses, and from each of its entries, to
    what git's exec of a hook really opens: each link hop (`.git/hooks/pre-commit ->
    ../../hooks/pre-commit`, the tracked `hooks/pre-commit -> ../tools/lint.sh`, a directory
    link `tools -> scripts` on the way) and the end. Any hop retargeted changes what runs."""
    out = _chain(hooks_dir)
    try:
        names = os.listdir(hooks_dir)
    except OSError:
        names = []
    for n in sorted(names):
        out.extend(p for p in _chain(os.path.join(hooks_dir, n)) if p not in out)
    return out


def _chain(path: bytes) -> list[bytes]:
    """The links the kernel follows to open `path` (each as a path with no link before its
    last component), then where it ends; one readlink per component, at most 40 links (the
    kernel's limit: past it git's exec fails, nothing more is followed)."""
    parts = [c for c in os.path.abspath(path).split(b"/") if c]
    cur, out, links = b"/", [], 0
    while parts:
        c = parts.pop(0)
        if c == b".":
            continue
        if c == b"..":
            cur = os.path.dirname(cur)
            continue
        nxt = os.path.join(cur, c)
        try:
            target = os.readlink(nxt)
        except OSError:  # not a link, or missing: the kernel takes it as it is
            cur = nxt
            continue
        links += 1
        if links > 40:
            break
        out.append(nxt)
        if target.startswith(b"/"):
            cur = b"/"
        parts[:0] = [t for t in target.split(b"/") if t]
    out.append(cur)
    return out


def _expand(value: bytes) -> bytes:
    """`~` and `~user` expanded, as git does for paths."""
    return os.path.expanduser(value) if value.startswith(b"~") else value


def _words(value: bytes) -> list[bytes]:
    """The words of a value read as a shell command (an alias's leading `!` dropped), and what
    follows `=` in one (`--file=PATH`)."""
    text = os.fsdecode(value[1:] if value.startswith(b"!") else value)
    try:
        words = shlex.split(text, comments=False, posix=True)
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words += list(lexer)
    except ValueError:  # unbalanced quotes: plain words
        words = text.split()
    out: list[bytes] = []
    for w in words:
        for part in (w, w.rpartition("=")[2]):
            b = os.fsencode(part)
            if b and b not in out:
                out.append(b)
    return out


def _in_worktree(worktree: Worktree, paths: Sequence[bytes]) -> tuple[bytes, ...]:
    """paths (absolute, or from the worktree root) that lie in the worktree, as paths from its
    root, as written and with symlinks resolved (b"" for the root); the others left out."""
    root = os.fsencode(worktree.root)
    found: list[bytes] = []
    for value in paths:
        full = os.path.normpath(os.path.join(root, value))
        for top, path in ((root, full), (os.path.realpath(root), os.path.realpath(full))):
            rel = os.path.relpath(path, top)
            rel = b"" if rel == b"." else rel
            if rel != b".." and not rel.startswith(b"../") and rel not in found:
                found.append(rel)
    return tuple(found)
