"""The egress allow-list: host patterns, named groups, ports; which addresses a name may reach."""

from __future__ import annotations

import re
import time

from git_agent.errors import UsageError
from git_agent.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    import ipaddress  # imported when used: a run in host mode does not pay for it
    from typing import TypeAlias

    IP: TypeAlias = "ipaddress.IPv4Address | ipaddress.IPv6Address"

# Named groups: `--allow-host @registries`.
GROUPS: dict[str, tuple[str, ...]] = {
    "registries": (
        "pypi.org", "files.pythonhosted.org",  # PyPI
        "registry.npmjs.org",  # npm
        "crates.io", "static.crates.io", "index.crates.io",  # crates.io
        "proxy.golang.org", "sum.golang.org",  # Go module proxy
        "rubygems.org", "index.rubygems.org",  # RubyGems
        "repo.maven.apache.org", "repo1.maven.org",  # Maven Central
    ),
}

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
MODES = ("host", "none", "isolated", "filtered")  # sandbox/network.py says what each is
PROXIED = ("isolated", "filtered")  # through the proxy
PROXY_PORT = 3128  # inside: the forwarder's port to the proxy (the next free if allowed)


class Rule(Record):
    """One allow-list entry: a host name (exact, or `*.domain` for its subdomains) or an IP
    address, and a port (None: 80 and 443, the ports of HTTP and HTTPS)."""

    __slots__ = ("host", "wildcard", "address", "port", "spec")

    def __init__(self, host: str, wildcard: bool, address: IP | None, port: int | None,
                 spec: str):
        self.host = host  # lower-case, no trailing dot; for a wildcard the domain after "*."
        self.wildcard = wildcard
        self.address = address  # set for an IP literal: allowed even in a private range
        self.port = port
        self.spec = spec  # as the user wrote it

    def matches(self, host: str, port: int) -> bool:
        if self.port is None:
            if port not in (80, 443):
                return False
        elif port != self.port:
            return False
        if self.address is not None:
            return literal(host) == self.address
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host


def normal_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


def literal(host: str) -> IP | None:
    """host as an IP address ([v6] brackets allowed), or None for a name."""
    import ipaddress

    h = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return None


def _split_port(spec: str, where: str) -> tuple[str, int | None]:
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0:
            raise UsageError(f"{where}: {spec!r}: unclosed [")
        host, rest = spec[: end + 1], spec[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise UsageError(f"{where}: {spec!r}: expected :PORT after ]")
        raw = rest[1:]
    elif spec.count(":") == 1:
        host, _, raw = spec.partition(":")
    else:
        return spec, None  # a bare IPv6 address or no port
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
        raise UsageError(f"{where}: {spec!r}: {raw!r} is not a port between 1 and 65535")
    return host, int(raw)


def parse_rule(spec: str, where: str = "--allow-host") -> Rule:
    """`host`, `*.domain`, `1.2.3.4`, `[::1]`, each with an optional `:port`."""
    host, port = _split_port(spec.strip(), where)
    addr = literal(host)
    if addr is None and (normal_host(host) == "localhost"
                         or normal_host(host).endswith(".localhost")):
        raise UsageError(f"{where}: {spec!r} is your own machine: reach its services with "
                         "--allow-port PORT (agent.allowPort), which bridges that loopback port")
    if addr is not None:
        return Rule(str(addr), False, addr, port, spec)
    name = normal_host(host)
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[2:]
    labels = name.split(".")
    if (not name or len(name) > 253 or not all(_LABEL.fullmatch(x) for x in labels)
            or (wildcard and len(labels) < 2)):
        raise UsageError(
            f"{where}: {spec!r} is not a host name (`example.com`, `*.example.com` for its "
            "subdomains, an IP address, each with an optional :PORT, or a group: "
            f"{', '.join('@' + g for g in GROUPS)})"
        )
    return Rule(name, wildcard, None, port, spec)


def parse(specs: list[str], where: str = "--allow-host") -> list[Rule]:
    """The rules for specs: groups expanded, `!spec` removing an earlier equal entry."""
    rules: list[Rule] = []
    for raw in specs:
        spec = raw.strip()
        remove = spec.startswith("!")
        spec = spec[1:] if remove else spec
        if spec.startswith("@"):
            group = GROUPS.get(spec[1:])
            if group is None:
                raise UsageError(f"{where}: unknown group {spec!r}; known: "
                                 f"{', '.join('@' + g for g in GROUPS)}")
            new = [parse_rule(h, where) for h in group]
        else:
            new = [parse_rule(spec, where)]
        for r in new:
            key = (r.host, r.wildcard, r.port)
            rules = [x for x in rules if (x.host, x.wildcard, x.port) != key]
            if not remove:
                rules.append(r)
    return rules


class Policy(Record):
    """What the proxy lets through. open_internet: any public host (isolated mode); else only
    the rules (filtered mode). Never: the host's own addresses, loopback, private and
    link-local ranges, unless an IP rule names the address."""

    __slots__ = ("rules", "open_internet", "_own", "_own_at")

    def __init__(self, rules: list[Rule], open_internet: bool):
        self.rules = rules
        self.open_internet = open_internet
        self._own: frozenset[IP] = frozenset()
        self._own_at = 0.0

    def allows_name(self, host: str, port: int) -> bool:
        host = normal_host(host)
        if any(r.matches(host, port) for r in self.rules):
            return True
        return self.open_internet and literal(host) is None

    def allows_address(self, addr: IP, port: int) -> bool:
        """An address the name resolved to (or a literal): public and not the host's, or
        named by an IP rule."""
        import ipaddress

        if any(r.address == addr and r.matches(str(addr), port) for r in self.rules):
            return True
        if isinstance(addr, ipaddress.IPv6Address):
            inner = embedded_ipv4(addr)
            if inner is not None:  # judged as the IPv4 address it carries
                return self.allows_address(inner, port)
            if addr in ipaddress.ip_network("fec0::/10"):  # site-local: deprecated, private
                return False
        return addr.is_global and not addr.is_multicast and addr not in self.own_addresses()

    def own_addresses(self) -> frozenset[IP]:
        """The host's addresses (all interfaces), read again every few seconds."""
        now = time.monotonic()
        if now - self._own_at > 5:
            self._own, self._own_at = host_addresses(), now
        return self._own


# IPv6 forms that carry an IPv4 address in their last 32 bits: IPv4-mapped (::ffff:0:0/96),
# IPv4-translated (::ffff:0:0:0/96), IPv4-compatible (::/96, deprecated), and NAT64's
# well-known and local-use prefixes (64:ff9b::/96, 64:ff9b:1::/48), where a NAT64 gateway
# turns them into that IPv4 address.
CARRIERS = ("::ffff:0:0/96", "::ffff:0:0:0/96", "::/96", "64:ff9b::/96", "64:ff9b:1::/48")


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, in the forms above (None: a plain one;
    `::` and `::1` are themselves)."""
    import ipaddress

    if int(addr) <= 1:
        return None
    if any(addr in ipaddress.ip_network(n) for n in CARRIERS):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def host_addresses() -> frozenset[IP]:
    """Every address of this host's interfaces, from /proc (IPv4 local routes, IPv6 list)."""
    import ipaddress

    out: set[IP] = set()
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                h = line.split()[0]
                out.add(ipaddress.IPv6Address(int(h, 16)))
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/net/fib_trie") as f:
            last = ""
            for line in f:
                s = line.strip()
                if s.startswith("|--"):
                    last = s[3:].strip()
                elif s == "/32 host LOCAL" and last:
                    out.add(ipaddress.IPv4Address(last))
    except (OSError, ValueError):
        pass
    return frozenset(out)


class Egress(Record):
    """What the network of one run is: its mode, allow-list and bridged host ports."""

    __slots__ = ("mode", "rules", "ports", "preset_hosts")

    def __init__(self, mode: str, rules: list[Rule], ports: list[int],
                 preset_hosts: tuple[str, ...] = ()):
        self.mode = mode
        self.rules = rules
        self.ports = ports
        self.preset_hosts = preset_hosts

    @property
    def proxied(self) -> bool:
        return self.mode in PROXIED

    @property
    def proxy_port(self) -> int:
        port = PROXY_PORT
        while port in self.ports:
            port += 1
        return port


def choose(*, net: str | None, configured_net: str | None, allow_hosts: list[str],
           configured_hosts: list[str], preset_hosts: tuple[str, ...], allow_ports: list[int],
           configured_ports: list[str]) -> Egress:
    """The run's network from flags (which win) and git config; one clear UsageError for a
    malformed mode, host, group or port, before anything starts.

    --allow-host without --net means filtered; so does agent.allowHost without agent.net."""
    if net is not None:
        mode, where = net, "--net"
    elif allow_hosts:
        mode, where = "filtered", "--allow-host"
    elif configured_net:
        mode, where = configured_net, "agent.net"
    elif configured_hosts:
        mode, where = "filtered", "agent.allowHost"
    else:
        mode, where = "host", ""
    if mode not in MODES:
        raise UsageError(f"{where}: {mode!r} is not one of {', '.join(MODES)}")
    flag_rules = parse(allow_hosts)  # checked whatever the mode: a typo is a typo
    cfg_rules = parse(configured_hosts, "agent.allowHost")
    ports = _ports([*configured_ports, *map(str, allow_ports)])
    if mode not in PROXIED:
        if allow_hosts:
            raise UsageError(f"--allow-host needs --net filtered or isolated (this run's mode "
                             f"is {mode})")
        if allow_ports:
            raise UsageError(f"--allow-port needs --net isolated or filtered (this run's mode "
                             f"is {mode})")
        return Egress(mode, [], [])  # configured hosts and ports belong to the proxied modes
    rules = parse([*preset_hosts, *configured_hosts, *allow_hosts]) \
        if mode == "filtered" else [*cfg_rules, *flag_rules]
    return Egress(mode, rules, ports, preset_hosts)


def _ports(values: list[str]) -> list[int]:
    out: list[int] = []
    for v in values:
        v = v.strip()
        if not (v.isascii() and v.isdigit()) or not 1 <= int(v) <= 65535:
            raise UsageError(f"agent.allowPort: {v!r} is not a port between 1 and 65535")
        if int(v) < 1024:  # the forwarder inside has no privilege to listen there
            raise UsageError(f"--allow-port {v}: a port below 1024 cannot be opened inside the "
                             "sandbox (it needs privilege); serve it on a port from 1024 up")
        if int(v) not in out:
            out.append(int(v))
    return out
