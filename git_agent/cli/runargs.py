"""The options of `git agent run` as one table: click builds the command from it, and a plain
parser reads the common command lines without importing click (launch speed).

The plain parser only answers when its reading is unambiguous and valid; anything else (help,
an unknown or malformed option, a bad value) returns None and click parses, and complains.
"""

from __future__ import annotations

from git_agent.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from typing import Any


class Opt(Record):
    __slots__ = ("flags", "dest", "help", "metavar", "multiple", "is_flag", "choices", "port",
                 "upto")

    def __init__(
        self,
        flags: tuple[str, ...],
        dest: str,
        help: str,
        metavar: str | None = None,
        multiple: bool = False,
        is_flag: bool = False,
        choices: tuple[str, ...] | None = None,
        port: bool = False,
        upto: int | None = None,
    ):
        self.flags = flags
        self.dest = dest
        self.help = help
        self.metavar = metavar
        self.multiple = multiple
        self.is_flag = is_flag
        self.choices = choices
        self.port = port  # an int in 1..65535
        self.upto = upto  # an int in 1..upto


RUN_OPTIONS: tuple[Opt, ...] = (
    Opt(("-s", "--session"), "session_name",
        "Session name (default: current branch; on a detached HEAD detached, in a linked "
        "worktree detached-ID, ID being git's name for it).", "NAME"),
    Opt(("--preset",), "preset",
        "Agent preset (default: from the command's name, else agent.preset; none: no preset).",
        "NAME"),
    Opt(("--net",), "net",
        "Network mode [agent.net, default host]: host = your network; none = loopback only; "
        "isolated = public internet through git agent's proxy, nothing of your machine but "
        "--allow-port; filtered = only --allow-host hosts and the preset's API hosts.",
        choices=("host", "none", "isolated", "filtered")),
    Opt(("--allow-host",), "allow_hosts",
        "Host reachable through the proxy: HOST, *.DOMAIN, IP, each [:PORT], or @registries "
        "(repeatable; implies --net filtered).", "HOST", multiple=True),
    Opt(("--allow-port",), "allow_ports",
        "With --net isolated/filtered: host loopback port reachable inside (repeatable).",
        "PORT", multiple=True, port=True),
    Opt(("--allow-socket",), "allow_sockets",
        "Host unix socket shown inside (repeatable); it gives away what it serves.", "PATH",
        multiple=True),
    Opt(("--pass-env",), "pass_env", "Pass this environment variable (repeatable).", "NAME",
        multiple=True),
    Opt(("--hide",), "hide", "Mask this worktree path with an empty file/dir (repeatable).",
        "PATH", multiple=True),
    Opt(("--mount",), "mounts", "Show a real-home dir inside (repeatable).",
        "PATH[:ro|:cow|:rw]", multiple=True),
    Opt(("--home",), "home", "Agent home [agent.home, default ~/aihome].", "DIR"),
    Opt(("--on",), "on",
        "Run the session on remote NAME (`git agent remote add`), over ssh or in a Podman "
        "container; review and apply stay here.", "NAME"),
    Opt(("--detach",), "detach",
        "With --on: start the agent there and return at once; it goes on without this "
        "connection (`git agent attach S`, `git agent fetch S`); not for podman://.",
        is_flag=True),
    Opt(("--attempts",), "attempts",
        "Run N sessions NAME.1..NAME.N at once from one base snapshot (1-16): stdin /dev/null, "
        "output in each session's attempt.log; exit 0 only if all do.", "N", upto=16),
    Opt(("--no-capture",), "no_capture",
        "Do not commit the session's changes when the agent exits.", is_flag=True),
)
_BY_FLAG = {f: o for o in RUN_OPTIONS for f in o.flags}


def defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in RUN_OPTIONS:
        out[o.dest] = False if o.is_flag else (() if o.multiple else None)
    out["command"] = ()
    return out


def _value(o: Opt, raw: str) -> object | None:
    if o.choices is not None and raw not in o.choices:
        return None
    if o.port or o.upto:
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= (o.upto or 65535):
            return None
        return int(raw)
    return raw


def fast_parse(args: list[str]) -> dict[str, Any] | None:
    """kwargs for run.main, as click would give them, or None to let click decide."""
    kw = defaults()
    multi: dict[str, list[object]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            kw["command"] = tuple(args[i + 1 :])
            break
        if not arg.startswith("-") or arg == "-":
            kw["command"] = tuple(args[i:])  # options end at the command (no interspersing)
            break
        if arg.startswith("--"):
            name, eq, attached = arg.partition("=")
        elif len(arg) > 2:
            name, eq, attached = arg[:2], "=", arg[2:]  # -sNAME
        else:
            name, eq, attached = arg, "", ""
        o = _BY_FLAG.get(name)
        if o is None:
            return None  # -h, an unknown option...
        if o.is_flag:
            if eq:
                return None
            kw[o.dest] = True
            i += 1
            continue
        if eq:
            raw = attached
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("-"):
            raw = args[i + 1]
            i += 2
        else:
            return None  # a missing value, or one that looks like an option: click's call
        value = _value(o, raw)
        if value is None:
            return None
        if o.multiple:
            multi.setdefault(o.dest, []).append(value)
        else:
            kw[o.dest] = value
    for dest, values in multi.items():
        kw[dest] = tuple(values)
    return kw
