"""The worker's side of the protocol: ONE JSON request read from stdin, one JSON answer written to
stdout. Nothing of the request reaches a shell or an argv; an unknown op is an error answer."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from git_agent import __version__
from git_agent.remote.remotes import PROTOCOL

MAX_REQUEST = 1 << 20

Op = Callable[[dict[str, object]], dict[str, object]]


def _read_request(fd: int) -> bytes:
    data = b""
    while b"\n" not in data and len(data) <= MAX_REQUEST:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def answer(raw: bytes, ops: dict[str, Op]) -> dict[str, object]:
    """The answer to one request (errors are answers too: the client says them in one line)."""
    if len(raw) > MAX_REQUEST:
        return {"error": f"request over {MAX_REQUEST} bytes"}
    try:
        req = json.loads(raw.split(b"\n", 1)[0])
    except ValueError:
        return {"error": "the request is not JSON"}
    if not isinstance(req, dict):
        return {"error": "the request is not a JSON object"}
    if req.get("protocol") != PROTOCOL:
        return {"error": f"protocol {req.get('protocol')!r} not spoken here (git agent "
                         f"{__version__} speaks {PROTOCOL})"}
    op = ops.get(str(req.get("op")))
    if op is None:
        return {"error": f"unknown op {str(req.get('op'))[:40]!r}"}
    return {"protocol": PROTOCOL, "version": __version__, **op(req)}


def serve(ops: dict[str, Op], fd_in: int = 0, fd_out: int = 1) -> int:
    reply = answer(_read_request(fd_in), ops)
    data = json.dumps(reply).encode() + b"\n"
    while data:
        data = data[os.write(fd_out, data):]
    return 1 if "error" in reply else 0
