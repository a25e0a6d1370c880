"""Remotes: their names and URLs (git config agent.remote.<name>.url) and the protocol's
constants; the engines that reach them are remote/engine.py's (docs/remote.md)."""

from __future__ import annotations

import re

from git_agent.errors import UsageError
from git_agent.record import Record
from git_agent.settings import gitconfig

PREFIX = "agent.remote."
PROTOCOL = 1
MAX_ANSWER = 1 << 20  # a worker's JSON answer: more is refused
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
# a host name or IPv4 address, or an IPv6 one in brackets; never starting with "-" (ssh option)
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")


class Target(Record):
    """Where a remote is: an engine and what it needs to reach it."""

    __slots__ = ("engine", "user", "host", "port", "connection", "name")

    def __init__(self, engine: str, user: str | None = None, host: str = "",
                 port: int | None = None, connection: str = "", name: str = ""):
        self.engine = engine  # "ssh" | "podman"
        self.user = user
        self.host = host
        self.port = port
        self.connection = connection  # podman: a `podman system connection` name, "": local
        self.name = name  # the remote's name in git config (lookup), "" for a bare URL


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"bad remote name {name!r}: letters, digits, - and _ (a letter or digit "
                         "first)")
    return name


def parse_url(url: str) -> Target:
    """ssh://[user@]host[:port], podman://CONNECTION or podman:// (the local engine); anything
    else is refused in one line."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UsageError(f"bad remote URL {url!r}: expected ssh://[user@]host[:port] or "
                         "podman://[CONNECTION]")
    if scheme == "podman":
        conn = rest.removesuffix("/")
        if conn and not _NAME.match(conn):
            raise UsageError(f"bad podman URL {url!r}: expected podman://CONNECTION (a name "
                             "`podman system connection list` shows) or podman:// (the local "
                             "engine)")
        return Target("podman", connection=conn)
    if scheme != "ssh":
        raise UsageError(f"unsupported remote URL scheme {scheme!r} in {url!r}: ssh:// or "
                         "podman://")
    rest = rest.removesuffix("/")
    if "/" in rest or "?" in rest or "#" in rest:
        raise UsageError(f"bad ssh URL {url!r}: no path (the worker keeps its own "
                         "repositories): ssh://[user@]host[:port]")
    user, at, hostport = rest.rpartition("@")
    if at and not _USER.match(user):
        raise UsageError(f"bad user name in {url!r}")
    host, port = hostport, None
    m = re.match(r"^(.*?)(?::(\d{1,5}))?$", hostport)
    if m and m.group(2) is not None:
        host, port = m.group(1), int(m.group(2))
        if not 0 < port < 65536:
            raise UsageError(f"bad port in {url!r}: 1 to 65535")
    elif ":" in hostport and not hostport.startswith("["):
        raise UsageError(f"bad ssh URL {url!r}: expected ssh://[user@]host[:port]")
    if not _HOST.match(host):
        raise UsageError(f"bad host in {url!r}")
    return Target("ssh", user=user or None, host=host, port=port)


def configured(cfg: gitconfig.GitConfig) -> dict[str, gitconfig.Entry]:
    """The remotes git config names, by name (the last setting of each wins)."""
    out: dict[str, gitconfig.Entry] = {}
    for e in cfg.with_prefix(PREFIX):
        name, dot, var = e.key[len(PREFIX):].rpartition(".")
        if dot and var == "url" and e.value is not None:
            out[name] = e
    return out


def lookup(cfg: gitconfig.GitConfig, name: str) -> Target:
    """The remote called name, its URL checked; one clear line when there is none."""
    found = configured(cfg).get(name)
    if found is None:
        known = ", ".join(sorted(configured(cfg))) or "none"
        raise UsageError(f"no remote {name!r} (remotes: {known}; `git agent remote add NAME "
                         "URL`)")
    assert found.value is not None
    t = parse_url(found.value)
    return Target(t.engine, t.user, t.host, t.port, t.connection, name)


def printable(text: str) -> str:
    """What a remote says, shown on one line without control characters."""
    return "".join(c if c.isprintable() else "?" for c in text)
