"""Network modes: host (shared), none (loopback only), and isolated / filtered, where the
sandbox's namespace has no route anywhere and reaches the outside only through loopback ports
that a forwarder relays to git agent's filtering proxy (and to the allowed host ports).

No pasta, no tun device, no privilege: bwrap's --unshare-net gives the namespace its loopback,
and unix sockets bind-mounted from the session carry the rest (as sandbox-runtime does).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from git_agent.egress import policy
from git_agent.egress.policy import MODES, PROXY_PORT, Egress
from git_agent.errors import SandboxUnavailable
from git_agent.sandbox.mounts import Bind, MountPlan

HELP = {
    "host": "the host's network, as any program of yours (default)",
    "none": "loopback only, nothing outside",
    "isolated": "any public internet host through git agent's proxy; nothing of your machine "
                "but --allow-port ports, no private or link-local address",
    "filtered": "only --allow-host hosts (and the preset's API hosts) through the proxy; "
                "--allow-host implies it",
}
INNER_PYTHON = Path("/usr/bin/python3")  # in the read-only /usr inside
INSIDE = Path("/run/git-agent")  # on the sandbox's private /run
__all__ = ["MODES", "PROXY_PORT", "Egress"]
HOSTS_ENV = "GIT_AGENT_NET_HOSTS"  # a hosts file: the proxy resolves names from it only
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
_DROP_VARS = ("ALL_PROXY", "all_proxy", "FTP_PROXY", "ftp_proxy")


def check(egress: Egress) -> None:
    """Fail closed before launch when the proxied network cannot be set up here."""
    if egress.proxied and not os.access(INNER_PYTHON, os.X_OK):
        raise SandboxUnavailable(
            f"--net {egress.mode} runs its forwarder with {INNER_PYTHON}, which is missing; "
            "install python3 or use --net none / host"
        )


def forwarder_path() -> Path:
    from git_agent.egress import forward

    return Path(forward.__file__)


def with_network(plan: MountPlan, egress: Egress, sockets: dict[str, Path]) -> MountPlan:
    """The plan with the proxied network: sockets and forwarder mounted under /run/git-agent,
    the proxy variables set, the forwarder started before the command. Other modes: as is."""
    if not egress.proxied:
        return plan
    inside = {name: INSIDE / path.name for name, path in sockets.items()}
    mounts = [*plan.mounts, Bind(forwarder_path(), INSIDE / "forward.py")]
    mounts += [Bind(path, inside[name]) for name, path in sockets.items()]
    pairs = [f"{egress.proxy_port}={inside['proxy']}"]
    pairs += [f"{p}={inside[f'port-{p}']}" for p in egress.ports]
    command = [os.fspath(INNER_PYTHON), "-I", "-S", os.fspath(INSIDE / "forward.py"), *pairs, "--",
               *plan.command]
    return plan.but(mounts=mounts, env=environment(plan.env, egress), command=command,
                    share_net=False)


def environment(env: dict[str, str], egress: Egress) -> dict[str, str]:
    """The proxy variables every runtime of the presets reads (curl, pip, cargo, go: the
    standard ones; Node >= 22: NODE_USE_ENV_PROXY; git: http.proxy through GIT_CONFIG_*)."""
    url = f"http://127.0.0.1:{egress.proxy_port}"
    out = {k: v for k, v in env.items() if k not in _DROP_VARS}
    for k in _PROXY_VARS:
        out[k] = url
    out["NO_PROXY"] = out["no_proxy"] = "localhost,127.0.0.1,::1"
    out["NODE_USE_ENV_PROXY"] = "1"
    try:
        n = int(out.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        n = 0
    out[f"GIT_CONFIG_KEY_{n}"] = "http.proxy"
    out[f"GIT_CONFIG_VALUE_{n}"] = url
    out["GIT_CONFIG_COUNT"] = str(n + 1)
    return out


@contextlib.contextmanager
def running(egress: Egress, session_dir: Path) -> Iterator[dict[str, Path]]:
    """The proxy of the run, listening before the sandbox starts and stopped after; yields
    the unix sockets to mount ({} when the mode needs none). A stopped proxy leaves the
    sandbox with no network at all: the forwarder inside has nowhere else to go."""
    if not egress.proxied:
        yield {}
        return
    from git_agent.egress import journal, proxy

    hosts = os.environ.get(HOSTS_ENV)
    resolver = proxy.hosts_resolver(Path(hosts)) if hosts else None
    record = journal.Journal(session_dir / journal.FILE)
    p = proxy.Proxy(
        policy=policy.Policy(egress.rules, open_internet=egress.mode == "isolated"),
        journal=record, socket_dir=session_dir / "net", ports=egress.ports, resolver=resolver,
        allow_flag="--allow-host",
    )
    try:
        try:
            p.start()
        except OSError as e:
            raise SandboxUnavailable(f"cannot start the network proxy: {e}") from e
        yield p.sockets()
    finally:
        p.stop()
        record.close()


def record(session_dir: Path) -> list[dict[str, object]]:
    """The session's network record as it is kept (for `review --json`): [] when none."""
    from git_agent.egress import journal

    return journal.read(session_dir / journal.FILE)


def review_lines(session_dir: Path, *, full: bool = False, since: float = 0.0) -> list[str]:
    """For `review`: the one-line summary of the session's network record, or (full, `review
    --net`) one line per connection; [] when the session has no record. since: only the
    connections from then on (`run` says what its own run reached)."""
    from git_agent.egress import journal

    entries = journal.read(session_dir / journal.FILE)
    entries = [e for e in entries if float(str(e.get("time", 0))) >= since - 1]
    if full:
        return journal.listing(entries)
    line = journal.summary(entries)
    return [line] if line else []
