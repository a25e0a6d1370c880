"""The egress pieces without a sandbox: allow-list syntax, mode choice, the ClientHello's
server name, the proxy's decisions over its unix socket, the record and its summaries."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from git_agent.egress import journal, policy, proxy, tls
from git_agent.errors import UsageError
from git_agent.sandbox import network
from git_agent.sandbox.mounts import MountPlan

# --- allow-list syntax ----------------------------------------------------------------------


def test_rules_exact_wildcard_port_ip_and_groups() -> None:
    rules = policy.parse(["API.Example.com.", "*.npmjs.org", "db.example:5432", "10.0.0.5",
                          "[::1]:8443", "@registries"])
    p = policy.Policy(rules, open_internet=False)
    assert p.allows_name("api.example.com", 443) and p.allows_name("api.example.com", 80)
    assert not p.allows_name("api.example.com", 8443)  # no port given: 80 and 443
    assert not p.allows_name("x.api.example.com", 443)  # exact means exact
    assert p.allows_name("registry.npmjs.org", 443) and not p.allows_name("npmjs.org", 443)
    assert p.allows_name("db.example", 5432) and not p.allows_name("db.example", 443)
    assert p.allows_name("10.0.0.5", 443) and p.allows_name("[::1]", 8443)
    for h in policy.GROUPS["registries"]:
        assert p.allows_name(h, 443)
    assert not p.allows_name("evil.example", 443)


def test_a_bang_removes_an_entry_and_later_wins() -> None:
    rules = policy.parse(["@registries", "!pypi.org", "a.example"])
    hosts = [r.host for r in rules]
    assert "pypi.org" not in hosts and "files.pythonhosted.org" in hosts and "a.example" in hosts


@pytest.mark.parametrize("bad", ["exa mple.com", "*.com", "host:0", "host:65536", "host:x",
                                 "@nope", "", "a..b", "[::1", "http://x.example", "*"])
def test_malformed_entries_get_one_clear_error(bad: str) -> None:
    with pytest.raises(UsageError, match=r"--allow-host: "):
        policy.parse([bad])


def test_addresses_public_only_unless_named() -> None:
    import ipaddress as ip

    p = policy.Policy(policy.parse(["127.0.0.1:8443"]), open_internet=True)
    p._own, p._own_at = frozenset({ip.ip_address("203.0.113.7")}), 1e18  # a host address
    for private in ("10.1.2.3", "192.168.1.1", "172.16.0.1", "169.254.169.254", "127.0.0.1",
                    "::1", "fe80::1", "fd00::1", "100.64.0.1", "198.51.100.1", "::ffff:10.0.0.1",
                    "0.0.0.0", "224.0.0.1",
                    # IPv6 forms carrying a private IPv4 (NAT64, compatible, translated), and
                    # deprecated site-local (found by the second attack round)
                    "64:ff9b::a00:5", "64:ff9b::7f00:1", "64:ff9b:1::a00:5", "::a00:5",
                    "::ffff:0:a00:5", "fec0::1", "::7f00:1"):
        assert not p.allows_address(ip.ip_address(private), 443), private
    assert p.allows_address(ip.ip_address("64:ff9b::808:404"), 443)  # NAT64 of 8.8.4.4
    assert p.allows_address(ip.ip_address("8.8.4.4"), 443)
    assert not p.allows_address(ip.ip_address("203.0.113.7"), 443)  # the host's own
    assert p.allows_address(ip.ip_address("127.0.0.1"), 8443)  # named with its port
    assert not p.allows_address(ip.ip_address("127.0.0.1"), 8444)
    assert p.allows_name("anything.example", 443) and not p.allows_name("8.8.4.4", 443)


def test_host_addresses_include_loopback() -> None:
    import ipaddress as ip

    assert ip.ip_address("127.0.0.1") in policy.host_addresses()


# --- modes ----------------------------------------------------------------------------------


def choose(**kw: object) -> policy.Egress:
    args: dict[str, object] = dict(net=None, configured_net=None, allow_hosts=[],
                                   configured_hosts=[], preset_hosts=(), allow_ports=[],
                                   configured_ports=[])
    args.update(kw)
    return policy.choose(**args)  # type: ignore[arg-type]


def test_allow_host_implies_filtered_with_the_presets_hosts() -> None:
    e = choose(allow_hosts=["pypi.org"], preset_hosts=("api.anthropic.com",))
    assert e.mode == "filtered" and [r.host for r in e.rules] == ["api.anthropic.com",
                                                                  "pypi.org"]
    assert choose(configured_hosts=["pypi.org"]).mode == "filtered"
    assert choose(configured_hosts=["pypi.org"], configured_net="none").mode == "none"
    assert choose().mode == "host"
    e = choose(net="isolated", allow_hosts=["10.0.0.5"], preset_hosts=("api.anthropic.com",))
    assert e.mode == "isolated" and [r.host for r in e.rules] == ["10.0.0.5"]


@pytest.mark.parametrize(("kw", "msg"), [
    ({"net": "host", "allow_hosts": ["pypi.org"]}, "--allow-host needs --net filtered"),
    ({"net": "none", "allow_ports": [5432]}, "--allow-port needs --net isolated"),
    ({"net": "open"}, "is not one of host, none, isolated, filtered"),
    ({"net": "host", "allow_hosts": ["bad host"]}, "is not a host name"),
    ({"configured_ports": ["99999"]}, "agent.allowPort"),
    ({"net": "isolated", "allow_ports": [80]}, "a port below 1024 cannot be opened inside"),
    ({"allow_hosts": ["localhost:5432"]}, "is your own machine: reach its services with "
                                          "--allow-port"),
    ({"allow_hosts": ["db.localhost"]}, "is your own machine"),
])
def test_bad_combinations_refused(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        choose(**kw)


def test_proxy_port_steps_aside_for_an_allowed_port() -> None:
    assert choose(net="isolated").proxy_port == 3128
    assert choose(net="isolated", allow_ports=[3128, 3129]).proxy_port == 3130


def test_plan_gets_forwarder_sockets_and_proxy_variables() -> None:
    e = choose(net="filtered", allow_ports=[5432])
    base = MountPlan(command=["claude"], env={"ALL_PROXY": "socks5://corp:1080",
                                              "GIT_CONFIG_COUNT": "1", "PATH": "/usr/bin"})
    socks = {"proxy": Path("/s/net/proxy.sock"), "port-5432": Path("/s/net/port-5432.sock")}
    plan = network.with_network(base, e, socks)
    assert plan.command == ["/usr/bin/python3", "-I", "-S", "/run/git-agent/forward.py",
                            "3128=/run/git-agent/proxy.sock",
                            "5432=/run/git-agent/port-5432.sock", "--", "claude"]
    assert not plan.share_net and base.command == ["claude"]  # a new plan
    dests = {str(m.dest) for m in plan.mounts}  # type: ignore[union-attr]
    assert {"/run/git-agent/forward.py", "/run/git-agent/proxy.sock"} <= dests
    env = plan.env
    assert "ALL_PROXY" not in env
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert env[k] == "http://127.0.0.1:3128"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1,::1"
    assert env["NODE_USE_ENV_PROXY"] == "1"
    assert (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_1"], env["GIT_CONFIG_VALUE_1"]) == (
        "2", "http.proxy", "http://127.0.0.1:3128")
    assert network.with_network(base, choose(net="none"), {}) is base


# --- the ClientHello ------------------------------------------------------------------------


def client_hello(name: str | None) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_server_name_of_a_real_client_hello() -> None:
    hello = client_hello("api.test")
    assert tls.hello_length(hello) == len(hello)
    assert tls.server_name(hello) == "api.test"
    assert tls.server_name(client_hello(None)) is None
    pieces = [hello[:3], hello[3:40], hello[40:]]
    assert tls.read_hello(lambda n: pieces.pop(0)) == hello  # arrives in pieces
    assert tls.hello_length(hello[:-1]) is None


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"SSH-2.0-OpenSSH\r\n",
                                  b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00"])
def test_not_a_client_hello(data: bytes) -> None:
    with pytest.raises(tls.NotTLS):
        tls.hello_length(data)


# --- the proxy over its unix socket (no sandbox) --------------------------------------------


@pytest.fixture
def upstream() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback server that records what it got and answers "OK"."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    got: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.settimeout(5)
            try:
                got.append(c.recv(65536))
                c.sendall(b"OK")
            except OSError:
                pass
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1], got
    srv.close()


@pytest.fixture
def run_proxy(tmp_path: Path, upstream: tuple[int, list[bytes]]) -> Iterator[proxy.Proxy]:
    port = upstream[0]
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 api.test other.test private.test\n")
    rules = policy.parse([f"api.test:{port}", f"other.test:{port}", f"127.0.0.1:{port}",
                          f"private.test:{port + 1}"])
    said: list[str] = []
    rec = journal.Journal(tmp_path / "net.jsonl", say=said.append)
    p = proxy.Proxy(policy=policy.Policy(rules, open_internet=False), journal=rec,
                    socket_dir=tmp_path / "net", ports=[], resolver=proxy.hosts_resolver(hosts),
                    allow_flag="--allow-host")
    p.said = said  # type: ignore[attr-defined]
    with p:
        yield p
    rec.close()


def ask(p: proxy.Proxy, request: bytes, then: bytes = b"") -> bytes:
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(5)
    c.connect(str(p.sockets()["proxy"]))
    c.sendall(request)
    out = b""
    if then:
        out = c.recv(65536)
        c.sendall(then)
    try:
        while chunk := c.recv(65536):
            out += chunk
    except OSError:
        pass
    c.close()
    return out


def records(p: proxy.Proxy) -> list[dict[str, object]]:
    p.stop()  # every connection's thread has written its line
    return journal.read(p.journal.path)


def test_connect_with_matching_sni_reaches_the_server(run_proxy: proxy.Proxy,
                                                     upstream: tuple[int, list[bytes]]) -> None:
    port, got = upstream
    hello = client_hello("api.test")
    out = ask(run_proxy, f"CONNECT api.test:{port} HTTP/1.1\r\n\r\n".encode(), hello)
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"OK")
    assert got == [hello]
    [r] = records(run_proxy)
    assert (r["host"], r["verdict"], r["sent"], r["received"]) == ("api.test", "allowed",
                                                                   len(hello), 2)


@pytest.mark.parametrize("name", ["other.test", "evil.example", None])
def test_connect_with_another_or_no_sni_is_refused(run_proxy: proxy.Proxy, name: str | None,
                                                   upstream: tuple[int, list[bytes]]) -> None:
    port, got = upstream
    out = ask(run_proxy, f"CONNECT api.test:{port} HTTP/1.1\r\n\r\n".encode(),
              client_hello(name))
    assert not out.endswith(b"OK") and got == []  # the server saw nothing of it
    [r] = records(run_proxy)
    assert r["verdict"] == "denied" and "server name" in str(r["reason"])


def test_a_tunnel_that_is_not_tls_is_refused(run_proxy: proxy.Proxy,
                                             upstream: tuple[int, list[bytes]]) -> None:
    port, got = upstream
    ask(run_proxy, f"CONNECT api.test:{port} HTTP/1.1\r\n\r\n".encode(), b"GET / HTTP/1.1\r\n\r\n")
    assert got == []
    assert records(run_proxy)[0]["verdict"] == "denied"


@pytest.mark.parametrize(("target", "why"), [
    ("evil.example:443", "not in the allow-list"),
    ("127.0.0.2:{port}", "an IP address"),
    ("private.test:{port1}", "a private, loopback"),  # allowed name, loopback address
])
def test_denied_targets_get_403_and_one_line(run_proxy: proxy.Proxy, target: str, why: str,
                                             upstream: tuple[int, list[bytes]]) -> None:
    port, got = upstream
    t = target.format(port=port, port1=port + 1)
    for _ in range(2):
        out = ask(run_proxy, f"CONNECT {t} HTTP/1.1\r\n\r\n".encode())
        assert out.startswith(b"HTTP/1.1 403") and why.encode() in out
    assert got == []
    assert [r["verdict"] for r in records(run_proxy)] == ["denied", "denied"]
    [line] = run_proxy.said  # type: ignore[attr-defined]
    assert t.rpartition(":")[0] in line and "--allow-host" in line


def test_plain_http_goes_in_origin_form_one_request(run_proxy: proxy.Proxy,
                                                    upstream: tuple[int, list[bytes]]) -> None:
    port, got = upstream
    out = ask(run_proxy, f"GET http://api.test:{port}/x?y HTTP/1.1\r\nHost: evil.example\r\n"
              "Proxy-Authorization: secret\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n"
              .encode())
    assert out == b"OK"
    [req] = got
    assert req.split(b"\r\n") == [b"GET /x?y HTTP/1.1", f"Host: api.test:{port}".encode(),
                                  b"Accept: */*", b"Connection: close", b"", b""]
    out = ask(run_proxy, b"GET http://evil.example/ HTTP/1.1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403") and len(got) == 1


def test_a_stopped_proxy_leaves_nothing_to_connect_to(run_proxy: proxy.Proxy) -> None:
    path = run_proxy.sockets()["proxy"]
    run_proxy.stop()
    c = socket.socket(socket.AF_UNIX)
    with pytest.raises(OSError):
        c.connect(str(path))
    c.close()


# --- the record -----------------------------------------------------------------------------


def test_summary_and_listing(tmp_path: Path) -> None:
    rec = journal.Journal(tmp_path / "n.jsonl", say=lambda m: None)
    for h in ("a.example", "b.example", "a.example"):
        rec.add(host=h, port=443, allowed=True, sent=10, received=20)
    for _ in range(4):
        rec.add(host="evil.example", port=443, allowed=False, reason="not in the allow-list")
    rec.add(host="10.0.0.1", port=80, allowed=False, reason="an IP address")
    rec.close()
    entries = journal.read(tmp_path / "n.jsonl")
    assert journal.summary(entries) == (
        "network: reached 2 hosts; denied 2: evil.example \u00d74, 10.0.0.1 \u00d71")
    assert journal.summary([]) is None
    lines = journal.listing(entries)
    assert len(lines) == 8 and "denied   evil.example:443  not in the allow-list" in lines[3]
    assert json.loads((tmp_path / "n.jsonl").read_text().splitlines()[0])["sent"] == 10


def _pass(p: proxy.Proxy, fd: int, then: bytes) -> None:
    from git_agent.egress import forward

    u = socket.socket(socket.AF_UNIX)
    u.connect(str(p.sockets()["proxy"]))
    u.sendmsg([forward.PASS], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd.to_bytes(4, "little"))])
    if then:
        with contextlib.suppress(OSError):  # the proxy may have dropped it already
            u.sendall(then)
    u.close()


def test_a_passed_socket_is_the_client(run_proxy: proxy.Proxy,
                                       upstream: tuple[int, list[bytes]]) -> None:
    """What the forwarder does: the agent's TCP connection itself goes to the proxy."""
    port, got = upstream
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    client = socket.create_connection(srv.getsockname())
    theirs, _ = srv.accept()  # the sandbox side of the agent's connection
    _pass(run_proxy, theirs.fileno(), b"")
    theirs.close()
    client.sendall(f"GET http://api.test:{port}/ HTTP/1.1\r\n\r\n".encode())
    client.settimeout(5)
    assert client.recv(100) == b"OK"
    client.close()
    srv.close()
    assert records(run_proxy)[0]["verdict"] == "allowed" and len(got) == 1


def test_a_passed_fd_that_is_no_tcp_socket_is_dropped(run_proxy: proxy.Proxy,
                                                      upstream: tuple[int, list[bytes]]) -> None:
    import os

    r, w = os.pipe()
    x, y = socket.socketpair()
    before = len(os.listdir("/proc/self/fd"))
    port = upstream[0]
    _pass(run_proxy, r, f"GET http://api.test:{port}/ HTTP/1.1\r\n\r\n".encode())
    _pass(run_proxy, x.fileno(), f"GET http://api.test:{port}/ HTTP/1.1\r\n\r\n".encode())
    run_proxy.stop()
    assert len(os.listdir("/proc/self/fd")) <= before  # the passed fds were closed
    assert upstream[1] == []
    for fd in (r, w):
        os.close(fd)
    x.close()
    y.close()


def test_plain_http_relays_one_request_and_its_body_only(tmp_path: Path) -> None:
    """A keep-alive server behind an allowed name: a second request pipelined after the first
    (naming another host) never reaches it, nor bytes after the first request's body."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    got: list[bytes] = []

    def serve() -> None:  # reads all it gets until a quiet second, then answers and closes
        c, _ = srv.accept()
        c.settimeout(1)
        data = b""
        with contextlib.suppress(OSError):
            while chunk := c.recv(65536):
                data += chunk
        got.append(data)
        with contextlib.suppress(OSError):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    port = srv.getsockname()[1]
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 api.test\n")
    rec = journal.Journal(tmp_path / "net.jsonl", say=lambda _: None)
    rules = policy.parse([f"api.test:{port}", f"127.0.0.1:{port}"])  # a loopback test server
    p = proxy.Proxy(policy=policy.Policy(rules, open_internet=False),
                    journal=rec, socket_dir=tmp_path / "net", ports=[],
                    resolver=proxy.hosts_resolver(hosts), allow_flag="--allow-host")
    with p:
        out = ask(p, f"POST http://api.test:{port}/up HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
                  "hello".encode() + b"GET /admin HTTP/1.1\r\nHost: internal-admin.example\r\n\r\n")
        assert out.endswith(b"OK")
        chunked = ask(p, f"POST http://api.test:{port}/up HTTP/1.1\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".encode())
        assert chunked.startswith(b"HTTP/1.1 411")
        # a bare LF hides a second Host in a header; two lengths smuggle a request in a body
        lf = ask(p, f"GET http://api.test:{port}/ HTTP/1.1\r\nX-A: 1\nHost: evil.example"
                 "\r\n\r\n".encode())
        assert lf.startswith(b"HTTP/1.1 400"), lf
        two = ask(p, f"POST http://api.test:{port}/ HTTP/1.1\r\nContent-Length: 0\r\n"
                  "Content-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: other.ex\r\n\r\n"
                  .encode())
        assert two.startswith(b"HTTP/1.1 400"), two
    srv.close()
    [data] = got
    assert data.count(b"HTTP/1.1") == 1 and data.endswith(b"\r\n\r\nhello"), data
    assert b"internal-admin" not in data and b"/admin" not in data
