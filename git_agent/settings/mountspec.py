"""Mount specs of agent.mount / --mount: `[!]PATH[:ro|:cow|:rw]`, and ~ expansion."""

from __future__ import annotations

import os
from pathlib import Path

from git_agent.errors import UsageError


def expand_home(value: str, home: Path) -> Path:
    if value == "~":
        return home
    if value.startswith("~/"):
        return home / value[2:]
    return Path(os.path.expandvars(value))


def parse_mount(spec: str, home: Path) -> tuple[bool, Path, str]:
    """An agent.mount entry `[!]PATH[:ro|:cow|:rw]`: (whether it removes PATH, PATH made
    absolute and normal: below home unless absolute, ~ and $VARS expanded; the mode, ro by
    default). A PATH holding ':' takes an explicit mode; an unknown mode is an error."""
    remove = spec.startswith("!")
    raw = spec[1:] if remove else spec
    head, colon, mode = raw.rpartition(":")
    if not colon:
        head, mode = raw, "ro"
    elif mode not in ("ro", "cow", "rw"):
        raise UsageError(f"agent.mount: {spec!r}: unknown mode {mode!r} (ro, cow or rw; a path "
                         "holding ':' needs one: PATH:ro)")
    if not head:
        raise UsageError(f"agent.mount: empty path in {spec!r}")
    path = expand_home(head, home)
    return remove, Path(os.path.normpath(path if path.is_absolute() else home / path)), mode
