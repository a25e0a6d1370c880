"""Settings: every `agent.*` git config key, its default, where its effective value came from."""

from __future__ import annotations

import os
from pathlib import Path

from git_agent import proc
from git_agent.errors import UsageError
from git_agent.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

# The toolchain dirs of the real home mounted by default when they exist (read-only).
DEFAULT_MOUNTS = (
    ".asdf",
    ".tool-versions",
    ".nvm",
    ".pyenv",
    ".rbenv",
    ".cargo",
    ".rustup",
    ".local/share/mise",
    ".config/mise",
    ".volta",
    ".sdkman",
    ".local/bin",
    ".bun",
    ".deno",
    ".local/share/pnpm",
    ".goenv",
    ".jenv",
    ".nodenv",
    ".gvm",
    ".ghcup",
)

# Agent-home files mounted read-only inside, against persistence (agent.protect replaces it).
DEFAULT_PROTECT = (
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".bashrc.d/",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".zlogout",
    ".zshrc.d/",
    ".config/fish/config.fish",
    ".config/fish/conf.d/",
    ".gitconfig",
    ".config/git/",
    ".inputrc",
    ".npmrc",
    ".gemrc",
    ".ssh/",
    ".pam_environment",
    ".xprofile",
    ".config/environment.d/",
    ".config/autostart/",
    ".config/systemd/",
)
# (an entry ending in "/" is a directory: created empty in the agent home when missing)

NET_MODES = ("host", "none", "isolated", "filtered")  # sandbox/network.py says what each is


class Key(Record):
    __slots__ = ("name", "default", "multi", "flag", "doc")

    def __init__(self, name: str, default: str, multi: bool, flag: str | None, doc: str):
        self.name = name  # as documented (camelCase); git compares case-insensitively
        self.default = default
        self.multi = multi
        self.flag = flag
        self.doc = doc


# One table: the docs, `git agent config` and the lookups below all read it.
KEYS: tuple[Key, ...] = (
    Key("agent.home", "~/aihome", False, "--home", "the agent's private home, mounted at $HOME"),
    Key("agent.command", "$SHELL", False, None, "what `git agent run` starts without a command"),
    Key(
        "agent.bwrap",
        "",
        False,
        None,
        "the bwrap binary (else bwrap >= 0.11 on PATH, else the "
        "bundled one); env GIT_AGENT_BWRAP wins",
    ),
    Key(
        "agent.mount",
        " ".join(DEFAULT_MOUNTS),
        True,
        "--mount",
        "real-home dirs shown inside: PATH (read-only), PATH:cow, PATH:rw; `!PATH` removes one",
    ),
    Key("agent.passEnv", "", True, "--pass-env", "extra environment variables passed inside"),
    Key("agent.net", "host", False, "--net",
        "network mode: host, none, isolated or filtered (filtered when agent.allowHost is set)"),
    Key(
        "agent.allowPort",
        "",
        True,
        "--allow-port",
        "host loopback ports reachable with --net isolated or filtered",
    ),
    Key(
        "agent.allowHost",
        "",
        True,
        "--allow-host",
        "hosts reachable with --net filtered: HOST, *.DOMAIN, an IP, each [:PORT]; "
        "@registries; `!HOST` removes one",
    ),
    Key("agent.allowSocket", "", True, "--allow-socket", "host unix sockets shown inside"),
    Key(
        "agent.protect",
        " ".join(DEFAULT_PROTECT),
        True,
        None,
        "agent-home paths mounted read-only inside (against persistence)",
    ),
    Key("agent.hide", "", True, "--hide", "worktree paths masked by an empty file or dir"),
    Key("agent.preset", "", False, "--preset", "preset to use when the command's name has none"),
    Key("agent.authorName", "", False, None, "author of capture commits (default: user.name)"),
    Key("agent.authorEmail", "", False, None, "email of capture commits (default: user.email)"),
)
KEY_BY_LOWER = {k.name.lower(): k for k in KEYS}
# Multi-valued keys whose values add to the default list (the others replace it when set).
ADDS_TO_DEFAULT = frozenset({"agent.mount"})


def canonical(key: str) -> str:
    """A key as git reports it: section and variable lower-cased, a subsection kept as is."""
    section, dot, rest = key.partition(".")
    if not dot:
        return key.lower()
    sub, dot2, var = rest.rpartition(".")
    if not dot2:
        return f"{section.lower()}.{rest.lower()}"
    return f"{section.lower()}.{sub}.{var.lower()}"


def _canonical_prefix(prefix: str) -> str:
    section, dot, rest = prefix.partition(".")
    return f"{section.lower()}{dot}{rest}" if dot else prefix.lower()


class Entry(Record):
    __slots__ = ("key", "value", "scope", "origin")

    def __init__(self, key: str, value: str | None, scope: str, origin: str):
        self.key = key  # lower-cased by git
        self.value = value
        self.scope = scope  # system, global, local, worktree, command
        self.origin = origin


class GitConfig(Record):
    """All agent.* entries in git's precedence order (later wins)."""

    __slots__ = ("entries",)

    def __init__(self, entries: list[Entry] | None = None):
        self.entries: list[Entry] = entries if entries is not None else []

    def get(self, key: str) -> Entry | None:
        key = canonical(key)
        for e in reversed(self.entries):
            if e.key == key:
                return e
        return None

    def get_str(self, key: str, default: str | None = None) -> str | None:
        e = self.get(key)
        return default if e is None or e.value is None else e.value

    def get_all(self, key: str) -> list[str]:
        key = canonical(key)
        return [e.value for e in self.entries if e.key == key and e.value is not None]

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def with_prefix(self, prefix: str) -> list[Entry]:
        prefix = _canonical_prefix(prefix)
        return [e for e in self.entries if e.key.startswith(prefix)]


_READ = ("git", "config", "-z", "--show-origin", "--show-scope", "--get-regexp", r"^agent\.")


def start_read(cwd: Path | None = None) -> Callable[[], subprocess.CompletedProcess[bytes]]:
    """Start reading git config now (launch: beside `git rev-parse`); read() takes it."""
    return proc.start(_READ, cwd=cwd)


def read(
    cwd: Path | None = None,
    *,
    started: Callable[[], subprocess.CompletedProcess[bytes]] | None = None,
) -> GitConfig:
    """Read every agent.* key with its scope and origin, in one git call."""
    p = (started or start_read(cwd))()
    if p.returncode not in (0, 1):
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"cannot read git config: {err[-1] if err else 'git config failed'}")
    fields = p.stdout.split(b"\0")
    entries: list[Entry] = []
    for i in range(0, len(fields) - 2, 3):
        scope, origin, kv = (f.decode(errors="surrogateescape") for f in fields[i : i + 3])
        key, sep, value = kv.partition("\n")
        entries.append(Entry(key=key, value=value if sep else None, scope=scope, origin=origin))
    return GitConfig(entries)


def parse_bool(value: str | None) -> bool:
    if value is None:
        return True
    v = value.strip().lower()
    if v in ("true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0", ""):
        return False
    raise UsageError(f"not a boolean: {value!r}")


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


def _display_key(key: str) -> str:
    """agent.preset.claude.passenv -> agent.preset.claude.passEnv (git lower-cases variables)."""
    known = KEY_BY_LOWER.get(key)
    if known:
        return known.name
    head, _, var = key.rpartition(".")
    from git_agent.settings.presets import VARS

    return f"{head}.{VARS.get(var, var)}" if head.startswith("agent.preset.") else key


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
        if e.key.startswith("agent.preset.") and e.key.count(".") >= 3:
            rows.append(
                Row(_display_key(e.key), "true" if e.value is None else e.value, e.scope, e.origin)
            )
            from git_agent.settings.presets import VARS

            if e.key.rpartition(".")[2] in VARS:
                continue
        unknown.append(e)
    return rows, unknown


def show_main(*, json_out: bool = False) -> int:
    """`git agent config`: data on stdout (aligned on a terminal, tab-separated when piped)."""
    import json
    import sys

    from git_agent import ui

    cwd = Path.cwd()
    cfg = read(cwd)
    rows, unknown = effective(cfg)
    for e in unknown:
        ui.say(
            f"git agent: warning: unknown setting {e.key} ({e.scope} {e.origin}); "
            "see `git agent --help`"
        )
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


def _source(r: Row) -> str:
    return r.scope if r.scope == "default" else f"{r.scope} {r.origin}"
