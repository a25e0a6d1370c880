"""The server name (SNI) of a TLS ClientHello, read from the first bytes of a CONNECT tunnel."""

from __future__ import annotations

from collections.abc import Callable

MAX_HELLO = 65536


class NotTLS(ValueError):
    """The bytes are not a TLS ClientHello."""


def hello_length(data: bytes) -> int | None:
    """How many bytes of data hold the whole ClientHello handshake message (its records), or
    None while more are needed. Raises NotTLS when data cannot start a ClientHello."""
    if data[:1] and data[0] != 0x16:
        raise NotTLS("not a TLS handshake record")
    if len(data) >= 2 and data[1] != 0x03:
        raise NotTLS("not a TLS version")
    handshake = b""
    pos = 0
    while pos + 5 <= len(data):
        if data[pos] != 0x16:
            raise NotTLS("ClientHello interrupted by another record type")
        size = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if pos + 5 + size > len(data):
            return None
        handshake += data[pos + 5 : pos + 5 + size]
        pos += 5 + size
        if len(handshake) >= 4:
            if handshake[0] != 0x01:
                raise NotTLS("first handshake message is not a ClientHello")
            if len(handshake) >= 4 + int.from_bytes(handshake[1:4], "big"):
                return pos
    if pos > MAX_HELLO:
        raise NotTLS("ClientHello too long")
    return None


def server_name(data: bytes) -> str | None:
    """The host_name of the ClientHello that data starts with (hello_length bytes), or None
    when it has no server_name extension. Raises NotTLS on anything malformed."""
    body = b""
    pos = 0
    while pos + 5 <= len(data):
        size = int.from_bytes(data[pos + 3 : pos + 5], "big")
        body += data[pos + 5 : pos + 5 + size]
        pos += 5 + size
    try:
        return _sni(body)
    except IndexError:
        raise NotTLS("truncated ClientHello") from None


def _sni(hs: bytes) -> str | None:
    size = int.from_bytes(hs[1:4], "big")
    msg = hs[4 : 4 + size]
    if len(msg) < size:
        raise IndexError
    p = 2 + 32  # client_version, random
    p += 1 + msg[p]  # session_id
    p += 2 + int.from_bytes(msg[p : p + 2], "big")  # cipher_suites
    p += 1 + msg[p]  # compression_methods
    if p >= len(msg):
        return None  # no extensions
    end = p + 2 + int.from_bytes(msg[p : p + 2], "big")
    p += 2
    if end > len(msg):
        raise IndexError
    names: list[str] = []
    while p + 4 <= end:
        kind = int.from_bytes(msg[p : p + 2], "big")
        length = int.from_bytes(msg[p + 2 : p + 4], "big")
        ext = msg[p + 4 : p + 4 + length]
        if len(ext) < length:
            raise IndexError
        if kind == 0:  # server_name
            q = 2
            stop = 2 + int.from_bytes(ext[0:2], "big")
            while q + 3 <= stop:
                nlen = int.from_bytes(ext[q + 1 : q + 3], "big")
                if ext[q] == 0:  # host_name
                    names.append(ext[q + 3 : q + 3 + nlen].decode("ascii"))
                q += 3 + nlen
        p += 4 + length
    if len(names) > 1:
        raise NotTLS("more than one server name")
    return names[0] if names else None


def read_hello(recv: Callable[[int], bytes]) -> bytes:
    """Read a whole ClientHello through recv (a socket's); raise NotTLS or EOFError."""
    data = b""
    while (n := hello_length(data) if data else None) is None:
        chunk = recv(16384)
        if not chunk:
            raise EOFError("the tunnel closed before a ClientHello")
        data += chunk
        if len(data) > MAX_HELLO:
            raise NotTLS("ClientHello too long")
    del n
    return data
