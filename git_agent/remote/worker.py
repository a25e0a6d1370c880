"""The worker's side of the protocol: a JSON request (one line) read from stdin, a JSON answer
(one line) written to stdout; a streaming op (prepare, fetch) may exchange more lines and counted
bytes on the same pipe first (docs/remote.md, "Framing"). Nothing of the request reaches a shell
or an argv; an unknown op is an error answer."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from git_agent import __version__
from git_agent.errors import GitAgentError
from git_agent.remote.remotes import PROTOCOL

MAX_REQUEST = 1 << 20


class Channel:
    """The worker's pipe: JSON lines and counted bytes, past the request line."""

    def __init__(self, fd_in: int = 0, fd_out: int = 1, rest: bytes = b""):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.rest = rest

    def write_line(self, obj: dict[str, object]) -> None:
        self.write(json.dumps(obj).encode() + b"\n")

    def write(self, data: bytes) -> None:
        while data:
            data = data[os.write(self.fd_out, data):]

    def read_line(self) -> dict[str, object]:
        while b"\n" not in self.rest and len(self.rest) <= MAX_REQUEST:
            chunk = os.read(self.fd_in, 65536)
            if not chunk:
                raise EOFError("the client closed the connection")
            self.rest += chunk
        line, _, self.rest = self.rest.partition(b"\n")
        got = json.loads(line)
        if not isinstance(got, dict):
            raise ValueError("not a JSON object")
        return got

    def copy_to(self, fd: int, n: int) -> None:
        """Exactly n bytes of the pipe into fd."""
        while n > 0:
            if not self.rest:
                self.rest = os.read(self.fd_in, min(n, 1 << 20))
                if not self.rest:
                    raise EOFError("the client closed the connection mid-transfer")
            chunk, self.rest = self.rest[:n], self.rest[n:]
            while chunk:
                w = os.write(fd, chunk)
                n -= w
                chunk = chunk[w:]


Op = Callable[[dict[str, object]], dict[str, object]]
StreamOp = Callable[[dict[str, object], Channel], dict[str, object]]


def _read_request(fd: int) -> bytes:
    data = b""
    while b"\n" not in data and len(data) <= MAX_REQUEST:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def answer(raw: bytes, ops: dict[str, Op], streams: dict[str, StreamOp] | None = None,
           chan: Channel | None = None) -> dict[str, object]:
    """The answer to one request (errors are answers too: the client says them in one line)."""
    if len(raw) > MAX_REQUEST and b"\n" not in raw[:MAX_REQUEST + 1]:
        return {"error": f"request over {MAX_REQUEST} bytes"}
    line, _, rest = raw.partition(b"\n")
    if len(line) > MAX_REQUEST:
        return {"error": f"request over {MAX_REQUEST} bytes"}
    try:
        req = json.loads(line)
    except ValueError:
        return {"error": "the request is not JSON"}
    if not isinstance(req, dict):
        return {"error": "the request is not a JSON object"}
    if req.get("protocol") != PROTOCOL:
        return {"error": f"protocol {req.get('protocol')!r} not spoken here (git agent "
                         f"{__version__} speaks {PROTOCOL})"}
    name = str(req.get("op"))
    stream = (streams or {}).get(name)
    if stream is not None:
        if chan is None:
            chan = Channel()
        chan.rest = rest
        return {"protocol": PROTOCOL, "version": __version__, **stream(req, chan)}
    op = ops.get(name)
    if op is None:
        return {"error": f"unknown op {name[:40]!r}"}
    return {"protocol": PROTOCOL, "version": __version__, **op(req)}


def serve(ops: dict[str, Op], streams: dict[str, StreamOp] | None = None,
          fd_in: int = 0, fd_out: int = 1) -> int:
    chan = Channel(fd_in, fd_out)
    try:
        reply = answer(_read_request(fd_in), ops, streams, chan)
    except (GitAgentError, OSError, EOFError, ValueError) as e:
        reply = {"error": str(e)}
    chan.write_line(reply)
    return 1 if "error" in reply else 0
