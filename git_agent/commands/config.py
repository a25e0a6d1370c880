"""`git agent config [KEY]`: every agent.* setting's effective value and where it came from, or
one key's value, as `git config KEY` prints it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from git_agent import ui
from git_agent.errors import GitAgentError, UsageError
from git_agent.settings import effective, gitconfig, keys


class Unset(GitAgentError):
    exit_code = 1  # as `git config KEY` exits for a key that is not set


def warn_unknown(cfg: gitconfig.GitConfig) -> None:
    """Say once for each agent.* key git agent does not read, with the key it likely meant."""
    for line in effective.unknown_warnings(cfg):
        ui.say(line)


def main(*, key: str | None = None, json_out: bool = False) -> int:
    """`git agent config`: data on stdout (aligned on a terminal, tab-separated when piped)."""
    cwd = Path.cwd()
    cfg = gitconfig.read(cwd)
    if key is not None:
        return _one(cfg, key)
    warn_unknown(cfg)
    rows, _ = effective.effective(cfg)
    if json_out:
        data = [
            {"key": r.key, "value": r.value, "scope": r.scope, "origin": r.origin} for r in rows
        ]
        ui.write_stdout((json.dumps(data, indent=2) + "\n").encode())
        return 0
    if not ui.stdout_is_tty():
        text = "".join(f"{r.key}\t{r.value}\t{_source(r)}\n" for r in rows)
        ui.write_stdout(text.encode(errors="surrogateescape"))
        return 0
    color = ui.use_color(cwd=cwd, slot="color.ui")
    kw = max(len(r.key) for r in rows)
    vw = min(max(len(r.value) for r in rows), 40)
    lines = []
    for r in rows:
        src = _source(r)
        src = (
            ui.paint(src, "\033[2m", color=color)
            if r.scope == "default"
            else ui.paint(src, ui.GREEN, color=color)
        )
        lines.append(f"{r.key:<{kw}}  {r.value:<{vw}}  {src}\n")
    sys.stdout.flush()
    ui.write_stdout("".join(lines).encode(errors="surrogateescape"))
    return 0


def _one(cfg: gitconfig.GitConfig, key: str) -> int:
    """One key's effective value(s), one a line; a key nobody set that has no default: exit 1."""
    name = gitconfig.canonical(key)
    if not keys.is_known(name):
        near = keys.nearest(name)
        hint = f"; did you mean {near}?" if near else "; `git agent config -h` lists the keys"
        raise UsageError(f"unknown setting {key}{hint}")
    shown = keys.display_key(name)
    rows, _ = effective.effective(cfg)
    values = [r.value for r in rows if r.key == shown and r.value != ""]
    if not values:
        raise Unset(f"{shown} is not set")
    ui.write_stdout("".join(f"{v}\n" for v in values).encode(errors="surrogateescape"))
    return 0


def _source(r: effective.Row) -> str:
    return r.scope if r.scope == "default" else f"{r.scope} {r.origin}"


def explain() -> str:
    """What each key means and the mount modes: the epilog of `git agent config -h`."""
    width = max(len(k.name) for k in keys.KEYS)
    lines = ["Keys (git config; `git agent config KEY` prints one):"]
    lines += [f"  {k.name:<{width}}  {k.doc}" for k in keys.KEYS]
    lines += [
        f"  {'agent.preset.NAME.VAR':<{width}}  a preset's {', '.join(keys.PRESET_VARS.values())}",
        *[f"  {k.name:<{width}}  {k.doc}" for k in keys.NAMED_KEYS],
        "",
        "Mount modes (agent.mount, --mount PATH[:MODE]):",
        "  ro   read-only (the default)",
        "  cow  the agent writes to its own copy; your files stay as they are",
        "  rw   read-write: the agent's writes land in your real files",
        "  !PATH removes a default mount",
    ]
    return "\n".join(lines)

