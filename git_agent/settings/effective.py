"""What each key is set to: its effective value(s) and where each came from (file, scope)."""

from __future__ import annotations

import os
from pathlib import Path

from git_agent.errors import UsageError
from git_agent.record import Record
from git_agent.settings.gitconfig import Entry, GitConfig
from git_agent.settings.keys import (
    ADDS_TO_DEFAULT,
    KEY_BY_LOWER,
    KEYS,
    display_key,
    is_known,
    nearest,
)
from git_agent.settings.mountspec import parse_mount


class Row(Record):
    """One line of `git agent config`: a key, one of its values, and where it came from."""

    __slots__ = ("key", "value", "scope", "origin")

    def __init__(self, key: str, value: str, scope: str, origin: str):
        self.key = key
        self.value = value
        self.scope = scope  # "default", or git's scope: system, global, local, worktree, command
        self.origin = origin  # git's origin (file:PATH, command line:), "" for a default


def _later_wins(rows: list[Row], home: Path) -> list[Row]:
    """agent.mount as it takes effect (sandbox.parse_home_mounts): a later entry for a path
    replaces an earlier one, and `!PATH` removes it (the `!PATH` row stays, to show where the
    removal comes from)."""

    def target(r: Row) -> Path | str:
        try:
            return parse_mount(r.value, home)[1]
        except UsageError:
            return r.value  # shown as it is; run refuses it

    out: list[Row] = []
    for r in rows:
        path = target(r)
        out = [o for o in out if o.value.startswith("!") or target(o) != path]
        out.append(r)
    return out


def effective(cfg: GitConfig, home: Path | None = None) -> tuple[list[Row], list[Entry]]:
    """Every KEYS key with its effective value(s), then preset keys; and the unknown entries."""
    home = home or Path(os.environ.get("HOME") or Path.home())
    rows: list[Row] = []
    for k in KEYS:
        if not k.multi:
            e = cfg.get(k.name)
            if e is None:
                rows.append(Row(k.name, k.default, "default", ""))
            else:
                rows.append(Row(k.name, "true" if e.value is None else e.value, e.scope, e.origin))
            continue
        set_here = [e for e in cfg.entries if e.key == k.name.lower() and e.value is not None]
        defaults = k.default.split()
        mine = [Row(k.name, e.value or "", e.scope, e.origin) for e in set_here]
        if k.name.lower() in ADDS_TO_DEFAULT:
            rows += _later_wins([Row(k.name, d, "default", "") for d in defaults] + mine, home)
        else:
            rows += mine or [Row(k.name, d, "default", "") for d in defaults]
        if not defaults and not set_here:
            rows.append(Row(k.name, "", "default", ""))
    from git_agent.settings.presets import PRESETS

    for p in PRESETS.values():  # the API hosts a preset brings to --net filtered
        rows += [Row(f"agent.preset.{p.name}.allowHost", h, "default", "") for h in p.allow_hosts]
    unknown: list[Entry] = []
    for e in cfg.entries:
        if e.key in KEY_BY_LOWER:
            continue
        if e.key.startswith(("agent.preset.", "agent.remote.")) and e.key.count(".") >= 3:
            rows.append(
                Row(display_key(e.key), "true" if e.value is None else e.value, e.scope, e.origin)
            )
        if not is_known(e.key):
            unknown.append(e)
    return rows, unknown


def unknown_keys(cfg: GitConfig) -> list[Entry]:
    """The agent.* entries git agent does not read (a typo, or a key of another version)."""
    return [e for e in cfg.entries if not is_known(e.key)]


def unknown_warnings(cfg: GitConfig) -> list[str]:
    """One warning for each unknown agent.* key (said once even when set in several files),
    with the nearest known key."""
    out: list[str] = []
    seen: set[str] = set()
    for e in unknown_keys(cfg):
        if e.key in seen:
            continue
        seen.add(e.key)
        near = nearest(e.key)
        hint = f"did you mean {near}?" if near else "see `git agent config -h`"
        out.append(f"warning: unknown setting {e.key} ({e.scope} {e.origin}); {hint}")
    return out
