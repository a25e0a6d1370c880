"""Host loopback services (databases, dev servers, agents' APIs) reached from the sandbox.

--net isolated (pasta) must reach only the allowed host ports: not the others on 127.0.0.1,
and not through the gateway address, which pasta by default maps to the host's loopback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from helpers import sandbox_as, serving

from git_agent.sandbox import network

pytestmark = pytest.mark.sandbox

PROBE = r"""
import json, socket, struct
def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        f = line.split()
        if f[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<I", int(f[2], 16)))
def probe(host, port):
    if host is None:
        return "no route"
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            s.settimeout(3)
            return s.recv(100).decode() or "closed"
    except OSError as e:
        return type(e).__name__
gw = gateway()
print(json.dumps({"A": probe("127.0.0.1", A), "B": probe("127.0.0.1", B),
                  "gw A": probe(gw, A), "gw B": probe(gw, B)}))
"""


@pytest.fixture
def host_ports() -> Iterator[tuple[int, int]]:
    """Two services on the host's loopback, on free ports: A greets "A", B greets "B"."""
    a, b = socket.socket(), socket.socket()
    for srv in (a, b):
        srv.bind(("127.0.0.1", 0))
        srv.listen()
    with serving(a, b"A"), serving(b, b"B"):
        yield a.getsockname()[1], b.getsockname()[1]


def _probe(user: str, ports: tuple[int, int], **kw: object) -> dict[str, str]:
    code = f"A, B = {ports[0]}, {ports[1]}\n" + PROBE
    p = sandbox_as(user, code, **kw)  # type: ignore[arg-type]
    assert p.returncode == 0, p.stderr
    out: dict[str, str] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


@pytest.fixture
def pasta_ready(tun_open_to_users: None) -> None:
    try:
        network.check_pasta()
    except Exception as e:
        pytest.skip(str(e))


def test_isolated_reaches_only_the_allowed_host_port(
    user: str, host_ports: tuple[int, int], pasta_ready: None
) -> None:
    res = _probe(user, host_ports, net="isolated", allow_ports=[host_ports[0]])
    assert res["A"] == "A"
    assert res["B"] != "B"
    assert res["gw A"] != "A" and res["gw B"] != "B"


def test_isolated_with_no_ports_reaches_none(
    user: str, host_ports: tuple[int, int], pasta_ready: None
) -> None:
    res = _probe(user, host_ports, net="isolated", allow_ports=[])
    assert res["A"] != "A" and res["B"] != "B"
    assert res["gw A"] != "A" and res["gw B"] != "B"


def test_isolated_gateway_leads_to_host_loopback_without_no_map_gw(
    user: str, host_ports: tuple[int, int], pasta_ready: None
) -> None:
    """The control: pasta's default maps the gateway to the host, reaching port B."""
    res = _probe(user, host_ports, net="isolated", allow_ports=[host_ports[0]],
                 pasta_drop=["--no-map-gw"])
    assert res["gw B"] == "B"


def test_none_reaches_nothing(user: str, host_ports: tuple[int, int]) -> None:
    res = _probe(user, host_ports, net="none")
    assert res == {"A": "ConnectionRefusedError", "B": "ConnectionRefusedError",
                   "gw A": "no route", "gw B": "no route"}


def test_host_reaches_both(user: str, host_ports: tuple[int, int]) -> None:
    """The control: without a network namespace both host services answer."""
    res = _probe(user, host_ports, net="host")
    assert res["A"] == "A" and res["B"] == "B"
