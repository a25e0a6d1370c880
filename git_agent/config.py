"""Settings: every `agent.*` git config key, its default, and where each effective value came from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from git_agent import proc
from git_agent.errors import UsageError

# The toolchain dirs of the real home mounted by default when they exist (read-only).
DEFAULT_MOUNTS = (
    ".asdf", ".tool-versions", ".nvm", ".pyenv", ".rbenv", ".cargo", ".rustup",
    ".local/share/mise", ".config/mise", ".volta", ".sdkman", ".local/bin", ".bun", ".deno",
    ".local/share/pnpm", ".goenv", ".jenv", ".nodenv", ".gvm", ".ghcup",
)

# Agent-home files mounted read-only inside, against persistence (agent.protect replaces it).
DEFAULT_PROTECT = (
    ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".bashrc.d/",
    ".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zlogout", ".zshrc.d/",
    ".config/fish/config.fish", ".config/fish/conf.d/",
    ".gitconfig", ".config/git/", ".inputrc", ".npmrc", ".gemrc", ".ssh/", ".pam_environment",
    ".xprofile", ".config/environment.d/", ".config/autostart/", ".config/systemd/",
)
# (an entry ending in "/" is a directory: created empty in the agent home when missing)

NET_MODES = ("host", "none", "isolated")


@dataclass(frozen=True)
class Key:
    name: str  # as documented (camelCase); git compares case-insensitively
    default: str
    multi: bool
    flag: str | None
    doc: str


# One table: the docs, `git agent config` and the lookups below all read it.
KEYS: tuple[Key, ...] = (
    Key("agent.home", "~/aihome", False, "--home", "the agent's private home, mounted at $HOME"),
    Key("agent.command", "$SHELL", False, None, "what `git agent run` starts without a command"),
    Key("agent.bwrap", "", False, None, "the bwrap binary (else bwrap >= 0.11 on PATH, else the "
        "bundled one); env GIT_AGENT_BWRAP wins"),
    Key("agent.mount", " ".join(DEFAULT_MOUNTS), True, "--mount",
        "real-home dirs shown inside: PATH (read-only), PATH:cow, PATH:rw; `!PATH` removes one"),
    Key("agent.passEnv", "", True, "--pass-env", "extra environment variables passed inside"),
    Key("agent.net", "host", False, "--net", "network mode: host, none or isolated"),
    Key("agent.allowPort", "", True, "--allow-port", "host loopback ports reachable with "
        "--net isolated"),
    Key("agent.allowSocket", "", True, "--allow-socket", "host unix sockets shown inside"),
    Key("agent.protect", " ".join(DEFAULT_PROTECT), True, None,
        "agent-home paths mounted read-only inside (against persistence)"),
    Key("agent.hide", "", True, "--hide", "worktree paths masked by an empty file or dir"),
    Key("agent.preset", "", False, "--preset", "preset to use when the command's name has none"),
    Key("agent.authorName", "", False, None, "author of capture commits (default: user.name)"),
    Key("agent.authorEmail", "", False, None, "email of capture commits (default: user.email)"),
)
KEY_BY_LOWER = {k.name.lower(): k for k in KEYS}


@dataclass
class Entry:
    key: str  # lower-cased by git
    value: str | None
    scope: str  # system, global, local, worktree, command
    origin: str


@dataclass
class GitConfig:
    """All agent.* entries in git's precedence order (later wins)."""

    entries: list[Entry] = field(default_factory=list)

    def get(self, key: str) -> Entry | None:
        key = key.lower()
        for e in reversed(self.entries):
            if e.key == key:
                return e
        return None

    def get_str(self, key: str, default: str | None = None) -> str | None:
        e = self.get(key)
        return default if e is None or e.value is None else e.value

    def get_all(self, key: str) -> list[str]:
        key = key.lower()
        return [e.value for e in self.entries if e.key == key and e.value is not None]

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def with_prefix(self, prefix: str) -> list[Entry]:
        prefix = prefix.lower()
        return [e for e in self.entries if e.key.startswith(prefix)]


def read(cwd: Path | None = None) -> GitConfig:
    """Read every agent.* key with its scope and origin, in one git call."""
    p = proc.run(
        ["git", "config", "-z", "--show-origin", "--show-scope", "--get-regexp", r"^agent\."],
        cwd=cwd,
        check=False,
    )
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
