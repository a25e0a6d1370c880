"""The filtering proxy outside the sandbox: HTTP CONNECT and plain HTTP to allowed hosts only,
names resolved here, the TLS server name checked, each allowed loopback port bridged; every
decision goes to the journal.

It listens on unix sockets only (bind-mounted into the sandbox, where the forwarder relays
loopback ports to them): nothing else leads out of the sandbox's network namespace, so when
the proxy stops, or dies, the sandbox has no network at all.

Threads with blocking sockets, a thread per connection, bytes moved by splice(2) once a
tunnel is open (forward.relay). A later TLS-terminating step (credential placeholders) fits in
`_tunnel`: wrap the client side in ssl with a per-session CA, the upstream side in ssl with
the system's trust, and relay with a header-rewriting loop instead of splice.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from git_agent.egress import forward, http, tls
from git_agent.egress import policy as pol
from git_agent.egress.forward import relay
from git_agent.egress.journal import Journal

HANDSHAKE_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
Resolver = Callable[[str, int], "list[pol.IP]"]


def system_resolver(host: str, port: int) -> list[pol.IP]:
    """The host's resolver (getaddrinfo): what any program of the user's would get."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    out: list[pol.IP] = []
    for *_, addr in infos:
        ip = pol.literal(str(addr[0]))
        if ip is not None and ip not in out:
            out.append(ip)
    return out


def hosts_resolver(path: Path) -> Resolver:
    """Names from a hosts-format file only (`ADDRESS NAME...`), nothing else resolves: for
    tests and closed setups (GIT_AGENT_NET_HOSTS)."""
    table: dict[str, list[pol.IP]] = {}
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        ip = pol.literal(words[0]) if words else None
        for name in words[1:] if ip is not None else ():
            table.setdefault(pol.normal_host(name), []).append(ip)  # type: ignore[arg-type]

    def resolve(host: str, port: int) -> list[pol.IP]:
        return list(table.get(pol.normal_host(host), []))

    return resolve


class Proxy:
    """The proxy of one run: start() before the sandbox, stop() after (safe twice)."""

    def __init__(self, *, policy: pol.Policy, journal: Journal, socket_dir: Path,
                 ports: list[int], resolver: Resolver | None = None, allow_flag: str = ""):
        self.policy = policy
        self.journal = journal
        self.dir = socket_dir
        self.ports = ports
        self.resolver = resolver or system_resolver
        self.allow_flag = allow_flag  # how to allow a denied host: "--allow-host"
        self._listeners: list[socket.socket] = []
        self._open: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def sockets(self) -> dict[str, Path]:
        """The unix socket of each service: "proxy", "port-N"."""
        names = ["proxy", *(f"port-{p}" for p in self.ports)]
        return {n: self.dir / f"{n}.sock" for n in names}

    def start(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        dfd = os.open(self.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name, path in self.sockets().items():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(f"/proc/self/fd/{dfd}/{path.name}")  # any length of session path
                s.listen(128)
                self._listeners.append(s)
                port = int(name[5:]) if name.startswith("port-") else None
                threading.Thread(target=self._accept, args=(s, port), daemon=True,
                                 name=f"git-agent-{name}").start()
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(dfd)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            conns = list(self._open)
        for s in self._listeners:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 5
        with self._lock:
            threads = list(self._threads)
        for t in threads:  # each writes its connection's line as it ends
            if t.ident is not None:  # not started yet: it will see _stopped and return
                t.join(max(0.0, deadline - time.monotonic()))
        for path in self.sockets().values():
            with contextlib.suppress(OSError):
                path.unlink()

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- connections

    def _accept(self, listener: socket.socket, port: int | None) -> None:
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                if self._stopped:
                    return
                time.sleep(0.01)
                continue
            target = self._bridge if port is not None else self._serve
            t = threading.Thread(target=self._guard, args=(target, c, port), daemon=True)
            with self._lock:
                self._threads.add(t)
            t.start()

    def _guard(self, fn: Callable[[socket.socket, int | None], None], u: socket.socket,
               port: int | None) -> None:
        with self._lock:
            if self._stopped:
                u.close()
                return
            self._open.add(u)
        c = u
        try:
            c = _client(u)
            if c is not u:
                with self._lock:
                    self._open.add(c)
            fn(c, port)
        except Exception:  # noqa: BLE001 - one connection's failure never stops the proxy
            pass
        finally:
            with self._lock:
                self._open.discard(c)
                self._open.discard(u)
                self._threads.discard(threading.current_thread())
            c.close()
            u.close()

    def _bridge(self, c: socket.socket, port: int | None) -> None:
        """An --allow-port port: to the host's loopback, IPv4 then IPv6."""
        assert port is not None
        start = time.time()
        for addr in ("127.0.0.1", "::1"):
            try:
                up = socket.create_connection((addr, port), timeout=CONNECT_TIMEOUT)
            except OSError:
                continue
            up.settimeout(None)
            counts = [0, 0]
            first = c.pending if isinstance(c, _Prefixed) else b""
            relay(c, up, counts, first=first)
            self.journal.add(host="localhost", port=port, allowed=True, via="port",
                             address=addr, sent=counts[0], received=counts[1], started=start)
            return
        self.journal.add(host="localhost", port=port, allowed=True, via="port",
                         reason="nothing listens there", started=start)

    def _serve(self, c: socket.socket, _port: int | None) -> None:
        start = time.time()
        c.settimeout(HANDSHAKE_TIMEOUT)
        head, rest = http.read_head(c)
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        host, port, via = "?", 0, "?"
        try:
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                raise http.Denied("not an HTTP/1 proxy request", "400 Bad Request")
            method, target, version = parts
            http.check_head(lines)
            if method == "CONNECT":
                host, port = http.authority(target, None)
                via = "connect"
            else:
                via = "http"
                if not target.lower().startswith("http://"):
                    raise http.Denied("only http:// URLs and CONNECT go through the proxy",
                                 "400 Bad Request")
                authority, slash, path = target[7:].partition("/")
                host, port = http.authority(authority.rpartition("@")[2], 80)
                path = "/" + path if slash else "/"
            addrs = self._addresses(host, port)
            if via == "connect":  # the ClientHello first: a refused tunnel reaches nobody
                first = self._tunnel(c, host, port, rest)
            else:  # exactly one request: its head, rewritten, and its body; nothing after it
                first = http.origin_request(lines[1:], method, path, version, host, port) \
                    + http.body_of(c, lines[1:], rest)
            addr, up = self._connect(addrs, port)
        except http.Denied as d:
            with contextlib.suppress(OSError):
                c.sendall(f"HTTP/1.1 {d.status}\r\nContent-Type: text/plain\r\n"
                          f"Connection: close\r\n\r\ngit agent: {d.reason}\n".encode())
            self.journal.add(host=host, port=port, allowed=False, reason=d.reason, via=via,
                             started=start, hint=d.hint)
            return
        counts = [0, 0]
        c.settimeout(None)
        if via == "connect":
            relay(c, up, counts, first=first)
        else:
            _answer(c, up, counts, first)
        self.journal.add(host=host, port=port, allowed=True, via=via, address=str(addr),
                         sent=counts[0], received=counts[1], started=start)

    def _addresses(self, host: str, port: int) -> list[pol.IP]:
        """The addresses host may be reached at; http.Denied when none (or the name is denied)."""
        hint = f"allow it with {self.allow_flag} {_spec(host, port)}" if self.allow_flag else ""
        if not self.policy.allows_name(host, port):
            why = ("an IP address (allow it explicitly)" if pol.literal(host) is not None
                   else "not in the allow-list")
            raise http.Denied(why, hint=hint)
        ip = pol.literal(host)
        addrs = [ip] if ip is not None else self.resolver(host, port)
        if not addrs:
            raise http.Denied("the name does not resolve", "502 Bad Gateway")
        ok = [a for a in addrs if self.policy.allows_address(a, port)]
        if not ok:
            raise http.Denied(f"resolves to {addrs[0]}, a private, loopback, link-local or host "
                         "address", hint=f"allow that address explicitly: "
                         f"{self.allow_flag or '--allow-host'} {_spec(str(addrs[0]), port)}")
        return ok

    def _connect(self, ok: list[pol.IP], port: int) -> tuple[pol.IP, socket.socket]:
        last: OSError | None = None
        for a in ok:
            try:
                up = socket.create_connection((str(a), port), timeout=CONNECT_TIMEOUT)
                up.settimeout(None)
                return a, up
            except OSError as e:
                last = e
        raise http.Denied(f"cannot connect: {last.strerror if last else 'no address'}",
                     "502 Bad Gateway")

    def _tunnel(self, c: socket.socket, host: str, port: int, rest: bytes) -> bytes:
        """Answer the CONNECT, then read the ClientHello: its server name must be the host."""
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pending = [rest] if rest else []

        def recv(n: int) -> bytes:
            return pending.pop() if pending else c.recv(n)

        try:
            hello = tls.read_hello(recv)
        except tls.NotTLS as e:
            raise http.Denied(f"the tunnel does not start with TLS ({e})") from None
        except (EOFError, OSError):
            raise http.Denied("the tunnel closed before a ClientHello") from None
        try:
            name = tls.server_name(hello)
        except (tls.NotTLS, UnicodeError) as e:
            raise http.Denied(f"malformed ClientHello ({e})") from None
        literal = pol.literal(host) is not None
        if name is None and not literal:
            raise http.Denied("TLS without a server name (SNI)")
        if name is not None and pol.normal_host(name) != pol.normal_host(host):
            raise http.Denied(f"TLS server name {name!r} is not the CONNECT host")
        return hello


class _Prefixed(socket.socket):
    """The unix connection itself as the client (no socket passed), its first byte put back."""

    pending = b""

    def recv(self, n: int, flags: int = 0) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        return super().recv(n, flags)


def _client(u: socket.socket) -> socket.socket:
    """The client of a connection to a unix socket: the TCP socket the forwarder passed (the
    agent's own connection inside), else the unix connection itself (a client inside that
    connected to the socket directly). A passed fd comes from the sandbox: it is used only if
    it is a connected stream socket, and only to read and write."""
    import array

    u.settimeout(HANDSHAKE_TIMEOUT)
    fds = array.array("i")
    data, anc, _flags, _ = u.recvmsg(1, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
    passed: list[socket.socket] = []
    for fd in fds:
        try:
            passed.append(socket.socket(fileno=fd))
        except OSError:  # not a socket
            os.close(fd)
    if data == forward.PASS and len(passed) == 1:
        c = passed[0]
        if c.type == socket.SOCK_STREAM and c.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                c.getpeername()  # connected
                c.settimeout(None)
                return c
    for x in passed:
        x.close()
    if data == forward.PASS or passed:
        raise OSError("passed something that is not a connected TCP socket")
    p = _Prefixed(u.family, u.type, fileno=u.detach())
    p.pending = data
    return p


def _spec(host: str, port: int) -> str:
    h = f"[{host}]" if ":" in host else host
    return h if port in (80, 443) else f"{h}:{port}"


def _answer(c: socket.socket, up: socket.socket, counts: list[int], request: bytes) -> None:
    """Send the one request upstream, then relay only the answer (the server closes: the
    request says Connection: close); nothing more from the client goes upstream."""
    try:
        up.sendall(request)
        counts[0] += len(request)
        forward.pump(up, c, lambda n: counts.__setitem__(1, counts[1] + n))
    except OSError:
        pass
    finally:
        up.close()
        c.close()


