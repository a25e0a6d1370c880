"""Remotes: their names and URLs (git config agent.remote.<name>.url), the ssh command that starts
the worker there, and the one-request JSON protocol spoken with it (docs/remote.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from git_agent import proc
from git_agent.errors import GitAgentError, UsageError
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

    __slots__ = ("engine", "user", "host", "port", "connection")

    def __init__(self, engine: str, user: str | None = None, host: str = "",
                 port: int | None = None, connection: str = ""):
        self.engine = engine  # "ssh" | "podman"
        self.user = user
        self.host = host
        self.port = port
        self.connection = connection


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"bad remote name {name!r}: letters, digits, - and _ (a letter or digit "
                         "first)")
    return name


def parse_url(url: str) -> Target:
    """ssh://[user@]host[:port] or podman://CONNECTION; anything else is refused in one line."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UsageError(f"bad remote URL {url!r}: expected ssh://[user@]host[:port] or "
                         "podman://CONNECTION")
    if scheme == "podman":
        if not _NAME.match(rest.rstrip("/")):
            raise UsageError(f"bad podman URL {url!r}: expected podman://CONNECTION (a name "
                             "`podman system connection list` shows)")
        return Target("podman", connection=rest.rstrip("/"))
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
    return parse_url(found.value)


def ssh_argv(target: Target, cfg: gitconfig.GitConfig, *, tty: bool = False,
             ticket: str | None = None, control: str | None = None,
             master: bool = False) -> list[str]:
    """ssh to the worker: no agent or port forwarding, no local shell; the command there is
    fixed (the request goes on stdin, never in argv), or the prepared run's ticket (random hex
    the worker made: no user data), with a pty when tty."""
    if target.engine != "ssh":
        raise GitAgentError(f"{target.engine}:// remotes are not yet supported (ssh:// only)")
    if ticket is not None and not re.match(r"^[0-9a-f]{32}$", ticket):
        raise GitAgentError("the worker answered a malformed ticket")
    argv = ["ssh", "-t" if tty else "-T", "-o", "ForwardAgent=no", "-o", "ClearAllForwardings=yes",
            "-o", "ForwardX11=no", "-o", "PermitLocalCommand=no"]
    conf = cfg.get_str("agent.sshConfig")
    if conf:
        argv += ["-F", str(Path(conf).expanduser())]
    if target.port is not None:
        argv += ["-p", str(target.port)]
    if target.user:
        argv += ["-l", target.user]
    if control is not None:  # one connection shared (client.Master): ssh's own channels
        argv += ["-o", f"ControlPath={control}", "-o", "ControlPersist=no",
                 "-o", "ControlMaster=" + ("yes" if master else "no")]
    if master:  # no command, no prompt: a master that cannot log in alone is not used
        return [*argv, "-N", "-o", "BatchMode=yes", "--", target.host.strip("[]")]
    tail = ["--ticket", ticket] if ticket is not None else []
    return [*argv, "--", target.host.strip("[]"), "git-agent", "worker", *tail]


def printable(text: str) -> str:
    """What a remote says, shown on one line without control characters."""
    return "".join(c if c.isprintable() else "?" for c in text)


def call(target: Target, cfg: gitconfig.GitConfig, request: dict[str, object]) -> dict[str, object]:
    """Send one request to the worker, return its answer; any failure is one GitAgentError."""
    body = json.dumps({"protocol": PROTOCOL, **request}).encode() + b"\n"
    p = proc.run(ssh_argv(target, cfg), input=body, check=False)
    err = p.stderr.decode(errors="replace").strip().splitlines()
    last = printable(err[-1]) if err else ""
    if p.returncode == 255:
        raise GitAgentError(f"cannot reach {target.host} over ssh: {last or 'ssh failed'}")
    if p.returncode == 127 or "git-agent: command not found" in p.stderr.decode(errors="replace"):
        raise GitAgentError(f"no git agent on {target.host}: `git-agent` is not on the remote "
                            "user's PATH (install it there with install.sh)")
    if len(p.stdout) > MAX_ANSWER:
        raise GitAgentError(f"the worker on {target.host} answered more than {MAX_ANSWER} bytes")
    try:
        answer = json.loads(p.stdout)
    except ValueError:
        raise GitAgentError(f"the worker on {target.host} gave no answer (exit status "
                            f"{p.returncode}{': ' + last if last else ''})") from None
    if not isinstance(answer, dict):
        raise GitAgentError(f"the worker on {target.host} gave a malformed answer")
    if answer.get("error"):
        raise GitAgentError(f"the worker on {target.host}: {printable(str(answer['error']))}")
    return answer
