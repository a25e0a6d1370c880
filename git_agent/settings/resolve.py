"""resolve(): `git agent run`'s flags + git config + the chosen preset -> what the sandbox gets.

Pure decisions, no side effects: it reads the environment and the filesystem it is given (to
expand `PREFIX*` names and to tell a hidden path that does not exist) and writes nothing. The
sandbox layer turns the result into a mount plan; unit tests call it without bwrap.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from git_agent.egress import policy
from git_agent.errors import UsageError
from git_agent.record import Record
from git_agent.repo import Worktree, within
from git_agent.settings import gitconfig, keys, mountspec, presets

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class RunFlags(Record):
    """`git agent run`'s options as given on the command line (empty: not given)."""

    __slots__ = ("session_name", "preset", "net", "allow_ports", "allow_sockets", "pass_env",
                 "hide", "mounts", "home", "command", "allow_hosts")

    def __init__(
        self,
        *,
        session_name: str | None = None,
        preset: str | None = None,
        net: str | None = None,
        allow_ports: Sequence[int] = (),
        allow_sockets: Sequence[str] = (),
        pass_env: Sequence[str] = (),
        hide: Sequence[str] = (),
        mounts: Sequence[str] = (),
        home: str | None = None,
        command: Sequence[str] = (),
        allow_hosts: Sequence[str] = (),
    ):
        self.allow_hosts = tuple(allow_hosts)
        self.session_name = session_name
        self.preset = preset
        self.net = net
        self.allow_ports = tuple(allow_ports)
        self.allow_sockets = tuple(allow_sockets)
        self.pass_env = tuple(pass_env)
        self.hide = tuple(hide)
        self.mounts = tuple(mounts)
        self.home = home
        self.command = tuple(command)


class RunSettings(Record):
    """Everything a run decided before anything is created or started."""

    __slots__ = ("session_name", "command", "preset", "net", "ports", "mount_specs",
                 "explicit_mounts", "protect", "hide", "sockets", "pass_env", "set_env",
                 "agent_home", "warnings", "egress")

    def __init__(
        self,
        *,
        session_name: str,
        command: list[str],
        preset: presets.Preset,
        net: str,
        ports: list[int],
        mount_specs: list[str],
        explicit_mounts: set[str],
        protect: list[str],
        hide: list[Path],
        sockets: list[Path],
        pass_env: list[str],
        set_env: dict[str, str],
        agent_home: Path,
        warnings: list[str],
        egress: policy.Egress | None = None,
    ):
        self.egress = egress or policy.Egress(net, [], ports)  # the mode, allow-list, ports
        self.session_name = session_name
        self.command = command  # the agent's argv, the preset's own command if it has one
        self.preset = preset
        self.net = net  # one of keys.NET_MODES
        self.ports = ports  # host loopback ports reachable in the isolated mode
        self.mount_specs = mount_specs  # `PATH[:MODE]` / `!PATH`, defaults first, later wins
        self.explicit_mounts = explicit_mounts  # the ones the user asked for (not defaults)
        self.protect = protect
        self.hide = hide  # absolute paths inside the worktree that exist
        self.sockets = sockets  # host unix sockets to pass in
        self.pass_env = pass_env  # variable names passed in besides the allow-list
        self.set_env = set_env  # variables the sandbox sets
        self.agent_home = agent_home
        self.warnings = warnings  # said once the run starts


def resolve(
    *,
    flags: RunFlags,
    cfg: gitconfig.GitConfig,
    worktree: Worktree,
    home: Path,
    default_session: str,
    environ: Mapping[str, str],
) -> RunSettings:
    """The run's settings: a flag beats git config, which beats the preset and the defaults."""
    warnings: list[str] = []
    cmd = list(flags.command) or default_command(cfg, environ)
    chosen = presets.resolve(command=cmd, name=flags.preset, cfg=cfg)
    egress = policy.choose(
        net=flags.net, configured_net=cfg.get_str("agent.net"),
        allow_hosts=list(flags.allow_hosts), configured_hosts=cfg.get_all("agent.allowHost"),
        preset_hosts=chosen.allow_hosts, allow_ports=list(flags.allow_ports),
        configured_ports=cfg.get_all("agent.allowPort"),
    )
    net, ports = egress.mode, egress.ports
    agent_home = mountspec.expand_home(flags.home or cfg.get_str("agent.home") or "~/aihome", home)
    if not agent_home.is_absolute():
        raise UsageError(f"agent home {agent_home} must be an absolute path")
    # resolved once, here: every later step (the owner check, the mount, the seeding, the
    # carry-back) uses this path, so a symlink on the way that someone swaps meanwhile is
    # never followed again
    agent_home = Path(os.path.realpath(agent_home))
    sockets = [Path(os.path.abspath(os.path.expanduser(s)))
               for s in [*cfg.get_all("agent.allowSocket"), *flags.allow_sockets]]
    set_env = {k: v for k, v in chosen.default_env.items() if k not in environ}
    set_env.update(chosen.set_env)
    ssh_sock = environ.get("SSH_AUTH_SOCK")
    if ssh_sock and Path(ssh_sock) in sockets:
        set_env["SSH_AUTH_SOCK"] = ssh_sock
    return RunSettings(
        session_name=flags.session_name if flags.session_name is not None else default_session,
        command=list(chosen.command) or cmd,
        preset=chosen,
        net=net,
        ports=ports,
        mount_specs=[*keys.DEFAULT_MOUNTS, *chosen.mounts, *cfg.get_all("agent.mount"),
                     *flags.mounts],
        explicit_mounts={*cfg.get_all("agent.mount"), *flags.mounts},
        protect=cfg.get_all("agent.protect") or list(keys.DEFAULT_PROTECT),
        hide=hide_paths(worktree, cfg.get_all("agent.hide"), list(flags.hide), warnings),
        sockets=sockets,
        pass_env=[*chosen.pass_env,
                  *presets.expand_env_names([*cfg.get_all("agent.passEnv"), *flags.pass_env])],
        set_env=set_env,
        agent_home=agent_home,
        warnings=warnings,
        egress=egress,
    )


def default_command(cfg: gitconfig.GitConfig, environ: Mapping[str, str]) -> list[str]:
    """agent.command, else the user's $SHELL, else /bin/sh."""
    configured = cfg.get_str("agent.command")
    if configured:
        try:
            words = shlex.split(configured)
        except ValueError as e:
            raise UsageError(f"agent.command: {e}") from None
        if words:
            return words
    return [environ.get("SHELL") or "/bin/sh"]


def hide_paths(
    wt: Worktree, from_config: Sequence[str], from_flags: Sequence[str], warnings: list[str]
) -> list[Path]:
    """agent.hide paths are relative to the worktree's root, --hide paths to the current
    directory; each must lie inside the worktree, outside .git. A missing one is a warning."""
    out: list[Path] = []
    for raw, base in [(v, wt.root) for v in from_config] + [(v, wt.cwd) for v in from_flags]:
        p = Path(os.path.normpath(base / os.path.expanduser(raw)))
        if not within(p, wt.root) or p == wt.root:
            raise UsageError(f"--hide {raw}: not a path inside the worktree {wt.root}")
        if ".git" in p.relative_to(wt.root).parts:
            raise UsageError(f"--hide {raw}: .git is not hidden this way")
        if not os.path.lexists(p):
            warnings.append(f"hide {raw}: does not exist, nothing to hide")
            continue
        out.append(p)
    return out
