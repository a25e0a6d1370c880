"""The key schema: every `agent.*` git config key, its default and meaning, and the preset
variables (agent.preset.<name>.<var>)."""

from __future__ import annotations

from git_agent.egress.policy import MODES
from git_agent.record import Record

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

# Agent-home paths mounted read-only from the shared agent home (agent.protect): none by default,
# since each session has its own copy-on-write agent home (sandbox/agenthome.py): a start-up
# file the agent changes changes for that session only.
DEFAULT_PROTECT: tuple[str, ...] = ()
# (an entry ending in "/" is a directory: created empty in the agent home when missing)

NET_MODES = MODES  # the one list (egress/policy.py); sandbox/network.py says what each is


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
        "agent-home paths kept read-only inside, even for the session's own later runs "
        "(default none: each session has its own copy-on-write agent home)",
    ),
    Key(
        "agent.homeKeep",
        "",
        True,
        None,
        "agent-home paths (file or dir) copied back from a session to the shared agent home "
        "after each run, besides the preset's login files; caches are opt-in "
        "(e.g. .cache/pip); anything listed here, code included, reaches later sessions",
    ),
    Key("agent.hide", "", True, "--hide", "worktree paths masked by an empty file or dir"),
    Key("agent.preset", "", False, "--preset", "preset to use when the command's name has none"),
    Key("agent.authorName", "", False, None, "author of capture commits (default: user.name)"),
    Key("agent.authorEmail", "", False, None, "email of capture commits (default: user.email)"),
    Key("agent.sshConfig", "", False, None,
        "ssh config file for remotes (`ssh -F`; default: ssh's own)"),
)
KEY_BY_LOWER = {k.name.lower(): k for k in KEYS}
# Multi-valued keys whose values add to the default list (the others replace it when set).
ADDS_TO_DEFAULT = frozenset({"agent.mount"})
# What git config may say about a preset: agent.preset.<name>.<var> (git lower-cases <var>).
PRESET_VARS = {"passenv": "passEnv", "setenv": "setEnv", "mount": "mount", "command": "command",
               "allowhost": "allowHost"}

# What git config may say about a remote: agent.remote.<name>.<var> (`git agent remote add`).
REMOTE_VARS = {"url": "url", "image": "image", "network": "network"}
# Keys with a name in them, as documented (the docs and `git agent config -h` list them).
NAMED_KEYS: tuple[Key, ...] = (
    Key("agent.remote.NAME.url", "", False, None,
        "where remote NAME is: ssh://[user@]host[:port], podman://CONNECTION (a `podman "
        "system connection`) or podman:// (the local engine) (`git agent remote add`)"),
    Key("agent.remote.NAME.image", "localhost/git-agent-worker:latest", False, None,
        "podman:// remotes: the worker image (contrib/podman/build-image builds it)"),
    Key("agent.remote.NAME.network", "", False, None,
        "podman:// remotes: the container's network (`podman run --network`; default: "
        "podman's own; `none`: no network, the agent's --net modes inside it)"),
)


def display_key(key: str) -> str:
    """A key as documented: agent.preset.claude.passenv -> agent.preset.claude.passEnv."""
    known = KEY_BY_LOWER.get(key)
    if known:
        return known.name
    head, _, var = key.rpartition(".")
    return f"{head}.{PRESET_VARS.get(var, var)}" if head.startswith("agent.preset.") else key


def is_known(key: str) -> bool:
    """Is a key (as git reports it) one git agent reads?"""
    if key in KEY_BY_LOWER:
        return True
    return (key.startswith("agent.preset.") and key.count(".") >= 3
            and key.rpartition(".")[2] in PRESET_VARS) or (
        key.startswith("agent.remote.") and key.count(".") >= 3
        and key.rpartition(".")[2] in REMOTE_VARS)


def nearest(key: str) -> str | None:
    """The known key an unknown one most likely meant (agent.mounts -> agent.mount)."""
    import difflib

    lower = key.lower()
    if lower.startswith("agent.preset.") and lower.count(".") >= 3:
        head, _, var = key.rpartition(".")
        hit = difflib.get_close_matches(var.lower(), list(PRESET_VARS), n=1, cutoff=0.6)
        return f"{head}.{PRESET_VARS[hit[0]]}" if hit else None
    if lower.startswith("agent.remote.") and lower.count(".") >= 3:
        head, _, var = key.rpartition(".")
        hit = difflib.get_close_matches(var.lower(), list(REMOTE_VARS), n=1, cutoff=0.6)
        return f"{head}.{REMOTE_VARS[hit[0]]}" if hit else None
    hit = difflib.get_close_matches(lower, list(KEY_BY_LOWER), n=1, cutoff=0.6)
    return KEY_BY_LOWER[hit[0]].name if hit else None
