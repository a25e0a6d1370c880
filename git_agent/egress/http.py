"""HTTP/1 requests as the proxy takes them: the head, the target's host and port, the body
by its length, and the one request the origin server gets. Pure parsing: the policy and the
relaying are proxy.py's."""

from __future__ import annotations

import socket

from git_agent.egress import policy as pol

HEAD_MAX = 65536
BODY_MAX = 1 << 30  # a plain-HTTP request body (an upload), at most


class Denied(Exception):
    def __init__(self, reason: str, status: str = "403 Forbidden", hint: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.hint = hint


def authority(text: str, default: int | None) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        raw = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, raw = text.rpartition(":") if ":" in text else (text, "", "")
    if not raw:
        if default is None:
            raise Denied(f"CONNECT needs host:port, got {text!r}", "400 Bad Request")
        return pol.normal_host(host), default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise Denied(f"bad port in {text!r}", "400 Bad Request")
    if not host:
        raise Denied(f"no host in {text!r}", "400 Bad Request")
    return pol.normal_host(host), int(raw)


HOP = {"proxy-connection", "proxy-authorization", "connection", "keep-alive", "host",
        "proxy-authenticate", "te", "trailer", "upgrade"}


def origin_request(headers: list[str], method: str, path: str, version: str, host: str,
             port: int) -> bytes:
    """The request as the origin server takes it: origin-form, Host set to the target, one
    request per connection (a second request could name another host)."""
    h = f"[{host}]" if ":" in host else host
    out = [f"{method} {path} {version}", f"Host: {h if port == 80 else f'{h}:{port}'}"]
    out += [x for x in headers if x and x.split(":", 1)[0].strip().lower() not in HOP]
    out += ["Connection: close", "", ""]
    return "\r\n".join(out).encode("latin-1")


def check_head(lines: list[str]) -> None:
    """A request head as HTTP/1.1 has it: lines end in CRLF, fields are NAME: VALUE. A bare CR
    or LF inside a line (a header a server may split off, `Host` among them) is refused, as
    is a line without a colon or a folded one."""
    for line in lines[1:]:
        if "\n" in line or "\r" in line or ":" not in line or line[:1] in (" ", "\t") \
                or line.split(":", 1)[0].strip() != line.split(":", 1)[0] \
                or not line.split(":", 1)[0]:
            raise Denied("a malformed header line", "400 Bad Request")


def body_of(c: socket.socket, headers: list[str], rest: bytes) -> bytes:
    """A plain-HTTP request's body, by its Content-Length: bytes the client sends after it
    (a pipelined second request, which could name another host) are never relayed."""
    lengths = {x.split(":", 1)[1].strip() for x in headers
               if ":" in x and x.split(":", 1)[0].strip().lower() == "content-length"}
    if len(lengths) > 1:  # which one a server takes is its choice: a request smuggled inside
        raise Denied("two Content-Length headers", "400 Bad Request")
    fields = {x.split(":", 1)[0].strip().lower(): x.split(":", 1)[1].strip()
              for x in headers if ":" in x}
    if "transfer-encoding" in fields:
        raise Denied("a request body of unknown length over plain http (use https)",
                     "411 Length Required")
    raw = fields.get("content-length", "0")
    if not (raw.isascii() and raw.isdigit()) or int(raw) > BODY_MAX:
        raise Denied(f"bad Content-Length {raw[:20]!r}", "400 Bad Request")
    want, body = int(raw), rest
    while len(body) < want:
        try:
            chunk = c.recv(min(65536, want - len(body)))
        except OSError as e:  # the handshake timeout, or the client went away
            raise Denied("the request body did not come", "408 Request Timeout") from e
        if not chunk:
            raise Denied("the request body ended early", "400 Bad Request")
        body += chunk
    return body[:want]


def read_head(c: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                return None, b""
            data += chunk
            if len(data) > HEAD_MAX:
                c.sendall(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
                return None, b""
    except OSError:
        return None, b""
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest
