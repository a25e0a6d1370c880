"""Host abstract unix sockets (X11, D-Bus, ...) reached through a shared network namespace."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest
from helpers import sandbox_as, serving

from git_agent.sandbox import landlock

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(landlock.abi_version() < landlock.SCOPE_MIN_ABI,
                       reason="needs Landlock ABI >= 6 (Linux 6.12)"),
]

CONNECT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(NAME)
    print(json.dumps({"connected": True, "greeting": s.recv(100).decode()}))
except OSError as e:
    print(json.dumps({"connected": False, "errno": e.errno}))
"""


@pytest.fixture
def host_abstract_server() -> Iterator[bytes]:
    """A listening abstract socket outside any sandbox, greeting whoever connects."""
    name = b"\0git-agent-test-" + os.urandom(8).hex().encode()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(name)
    srv.listen()
    with serving(srv, b"host"):
        yield name


def _connect(user: str, name: bytes, *, landlock_on: bool) -> dict[str, object]:
    p = sandbox_as(user, f"NAME = {name!r}\n" + CONNECT, net="host", landlock=landlock_on)
    assert p.returncode == 0, p.stderr
    out: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


def test_host_abstract_socket_is_unreachable(user: str, host_abstract_server: bytes) -> None:
    assert _connect(user, host_abstract_server, landlock_on=True) == {
        "connected": False, "errno": 1,  # EPERM
    }


def test_host_abstract_socket_is_reachable_without_scoping(
    user: str, host_abstract_server: bytes
) -> None:
    res = _connect(user, host_abstract_server, landlock_on=False)
    assert res == {"connected": True, "greeting": "host"}
