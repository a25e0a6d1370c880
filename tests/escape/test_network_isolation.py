"""The network modes through the real CLI (real bwrap, the real proxy), as root and as an
unprivileged user, with every target where an attacker finds it: host services bound to the
wildcards (0.0.0.0, [::]) as well as to loopback, the host's own addresses, a neighbour.

Traffic goes only to loopback and to a network namespace each test creates itself (a veth
pair with TEST-NET-2 / 2001:db8:: addresses): "the host's other address" and "a machine next
door" are built there. Names resolve only through the proxy's hosts file (GIT_AGENT_NET_HOSTS),
never through a real resolver; a DNS probe sends a packet only where no route exists or to a
responder the test runs on loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import serving

from tests.conftest import Actor

pytestmark = pytest.mark.sandbox
PY = "/usr/bin/python3"

# Run inside the sandbox. Each probe: a short text (what answered) or the error's name.
PROBE = r"""
import json, os, socket, ssl, sys, urllib.request
spec = json.loads(sys.argv[1])
out = {}

def raw(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            s.settimeout(3)
            return s.recv(100).decode(errors="replace").strip() or "closed"
    except OSError as e:
        return type(e).__name__

def https(url):
    ctx = ssl.create_default_context(cafile=spec["ca"])
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            return r.read().decode()
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)

def sni_mismatch(host, port, sni):
    # through the proxy by hand: CONNECT to an allowed name, TLS naming another
    s = socket.create_connection(("127.0.0.1", spec["proxy"]), timeout=5)
    s.sendall(("CONNECT %s:%d HTTP/1.1\r\n\r\n" % (host, port)).encode())
    head = s.recv(4096)
    ctx = ssl.create_default_context(cafile=spec["ca"])
    ctx.check_hostname = False
    try:
        t = ctx.wrap_socket(s, server_hostname=sni)
        t.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return "ANSWERED " + t.recv(100).decode(errors="replace")
    except (OSError, ssl.SSLError) as e:
        return "refused " + head.split(b"\r\n")[0].decode()

def connect_proxy(target):
    try:
        s = socket.create_connection(("127.0.0.1", spec["proxy"]), timeout=5)
        s.sendall(("CONNECT %s HTTP/1.1\r\n\r\n" % target).encode())
        return s.recv(4096).split(b"\r\n")[0].decode()
    except OSError as e:
        return type(e).__name__

def dns():
    # a route to any nameserver of resolv.conf? (a UDP connect sends nothing)
    res = {}
    for line in open("/etc/resolv.conf"):
        w = line.split()
        if len(w) >= 2 and w[0] == "nameserver":
            fam = socket.AF_INET6 if ":" in w[1] else socket.AF_INET
            u = socket.socket(fam, socket.SOCK_DGRAM)
            try:
                u.connect((w[1], 53))
                routed = not w[1].startswith("127.")  # the sandbox's own loopback is its own
                res[w[1]] = "ROUTE" if routed else "loopback"
            except OSError as e:
                res[w[1]] = type(e).__name__
            u.close()
    if all(v != "ROUTE" for v in res.values()):  # only then may a lookup send anything
        try:
            res["lookup"] = str(socket.getaddrinfo(spec["denied_name"], 443))
        except OSError as e:
            res["lookup"] = type(e).__name__
    # the test's own responder on the host's loopback: never reached
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(1)
    try:
        u.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04evil\x07example\x00"
                 b"\x00\x01\x00\x01", ("127.0.0.1", spec["dns"]))
        res["responder"] = "ANSWERED %r" % u.recv(512)[:4]
    except OSError as e:
        res["responder"] = type(e).__name__
    return res

for key, (kind, *args) in spec["probes"].items():
    out[key] = {"raw": raw, "https": https, "sni": sni_mismatch, "proxy": connect_proxy,
                "dns": dns}[kind](*args)
print(json.dumps(out))
"""


# --- what the tests reach: loopback, and a namespace each test makes -------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    p = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
         crt, "-days", "2", "-subj", "/CN=api.test",
         "-addext", "subjectAltName=DNS:api.test,DNS:other.test"], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {p.stderr.decode()[-200:]}")
    return crt, key


@pytest.fixture
def tls_server(cert: tuple[Path, Path]) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS server on the host's loopback, answering "hello NAME" for the SNI it got."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    names: list[str] = []  # the SNI of each handshake that reached it

    def pick(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name or "")

    ctx.sni_callback = pick  # type: ignore[assignment]
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            try:
                c.settimeout(5)
                t = ctx.wrap_socket(c, server_side=True)
                t.recv(4096)
                body = f"hello {names[-1]}".encode()
                t.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                t.close()
            except OSError:
                c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], names
    stop.set()
    t.join()
    srv.close()


def _listen(family: socket.AddressFamily, addr: str) -> socket.socket:
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 0))
    s.listen(16)
    return s


@pytest.fixture
def host_services() -> Iterator[dict[str, int]]:
    """A service on the host's loopback ("db", the one to allow) and one on the wildcards
    0.0.0.0 and [::] on the same port ("wild": every address of the host)."""
    db = _listen(socket.AF_INET, "127.0.0.1")
    wild4 = _listen(socket.AF_INET, "0.0.0.0")
    port = wild4.getsockname()[1]
    wild6 = socket.socket(socket.AF_INET6)
    wild6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    wild6.bind(("::", port))
    wild6.listen(16)
    with serving(db, b"db"), serving(wild4, b"wild"), serving(wild6, b"wild6"):
        yield {"db": db.getsockname()[1], "wild": port}


class Neighbour:
    """A network namespace the test made, joined to ours by a veth pair: `host4`/`host6` are
    this host's own addresses on it, `peer4` a machine next door with a service on `port`."""

    def __init__(self) -> None:
        k = random.randrange(1, 63) * 4
        tag = uuid.uuid4().hex[:6]
        self.ns, self.here, self.there = f"ga-{tag}", f"gah{tag}", f"gan{tag}"
        self.host4, self.peer4 = f"198.51.100.{k + 1}", f"198.51.100.{k + 2}"
        net6 = f"2001:db8:{random.randrange(1, 0xffff):x}"
        self.host6, self.peer6 = f"{net6}::1", f"{net6}::2"
        self.port = 0
        self.server: subprocess.Popen[bytes] | None = None

    def ip(self, *args: str, ns: bool = False) -> None:
        argv = ["ip", *(["-n", self.ns] if ns else []), *args]
        subprocess.run(argv, check=True, capture_output=True)

    def up(self) -> None:
        self.ip("netns", "add", self.ns)
        self.ip("link", "add", self.here, "type", "veth", "peer", "name", self.there)
        self.ip("link", "set", self.there, "netns", self.ns)
        self.ip("addr", "add", f"{self.host4}/30", "dev", self.here)
        self.ip("-6", "addr", "add", f"{self.host6}/64", "dev", self.here, "nodad")
        self.ip("link", "set", self.here, "up")
        self.ip("addr", "add", f"{self.peer4}/30", "dev", self.there, ns=True)
        self.ip("-6", "addr", "add", f"{self.peer6}/64", "dev", self.there, "nodad", ns=True)
        self.ip("link", "set", self.there, "up", ns=True)
        self.ip("link", "set", "lo", "up", ns=True)
        code = ("import socket,sys\ns=socket.socket();s.bind(('0.0.0.0',0));s.listen()\n"
                "print(s.getsockname()[1],flush=True)\n"
                "while True:\n c,_=s.accept();c.sendall(b'neighbour');c.close()\n")
        self.server = subprocess.Popen(["ip", "netns", "exec", self.ns, PY, "-c", code],
                                       stdout=subprocess.PIPE)
        assert self.server.stdout is not None
        self.port = int(self.server.stdout.readline())
        # the control: from the host the neighbour answers (the route is real)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((self.peer4, self.port), timeout=2) as c:
                    assert c.recv(20) == b"neighbour"
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise

    def down(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait()
        subprocess.run(["ip", "link", "del", self.here], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


@pytest.fixture
def neighbour() -> Iterator[Neighbour]:
    if os.geteuid() != 0:
        pytest.skip("making a test network namespace needs root")
    n = Neighbour()
    try:
        n.up()
        yield n
    finally:
        n.down()


@pytest.fixture
def dns_responder() -> Iterator[tuple[int, list[bytes]]]:
    """A DNS responder on the host's loopback that answers anything: what a leak would reach."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(0.2)
    got: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = u.recvfrom(512)
            except OSError:
                continue
            got.append(data)
            u.sendto(data[:2] + b"\x81\x80" + data[4:], peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield u.getsockname()[1], got
    stop.set()
    t.join()
    u.close()


# --- running the probe ------------------------------------------------------------------------


def hosts_file(actor: Actor, lines: str) -> dict[str, str]:
    path = actor.base / "hosts"
    path.write_text(lines)
    actor.own(path)
    return {"GIT_AGENT_NET_HOSTS": str(path)}


def probe(actor: Actor, args: list[str], probes: dict[str, list[object]], *,
          cert: Path | None = None, env: dict[str, str] | None = None,
          extra: dict[str, object] | None = None) -> tuple[dict[str, object], str, Path]:
    repo = actor.base / "repo"
    if not repo.exists():
        repo = actor.make_repo()
    (repo / "probe.py").write_text(PROBE)
    if cert is not None:
        (repo / "ca.pem").write_bytes(cert.read_bytes())
    actor.own(repo)
    spec = {"probes": probes, "ca": "ca.pem", "proxy": 3128, "dns": 9,
            "denied_name": "denied.example", **(extra or {})}
    p = actor.agent("run", "-s", "net", "--no-capture", *args, "--", PY, "probe.py",
                    json.dumps(spec), cwd=repo, env=env)
    assert p.returncode == 0, p.stderr
    out: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return out, p.stderr, repo


def net_record(actor: Actor) -> list[dict[str, object]]:
    """The session's record, by the time each connection started (a line is written as its
    connection ends)."""
    [path] = (actor.home / ".local" / "state" / "git-agent").rglob("net.jsonl")
    rec = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(rec, key=lambda r: float(r["time"]))


def refused(v: object) -> bool:
    return v in ("ConnectionRefusedError", "OSError", "TimeoutError", "ConnectionResetError") \
        or str(v).startswith(("HTTPError", "URLError", "OSError", "RemoteDisconnected",
                              "ConnectionResetError", "SSLError", "SSLEOFError"))


# --- the promises -------------------------------------------------------------------------------


def test_filtered_reaches_only_allowed_hosts_and_records_each_decision(
        actor: Actor, tls_server: tuple[int, list[str]], cert: tuple[Path, Path]) -> None:
    port, names = tls_server
    env = hosts_file(actor, "127.0.0.1 api.test other.test\n")
    res, err, _ = probe(actor, ["--allow-host", f"api.test:{port}", "--allow-host",
                                f"127.0.0.1:{port}"], {
        "allowed": ["https", f"https://api.test:{port}/"],
        "denied": ["https", f"https://other.test:{port}/"],
        "denied again": ["https", f"https://other.test:{port}/"],
        "denied name": ["https", "https://denied.example/"],
    }, cert=cert[0], env=env)
    assert res["allowed"] == "hello api.test"
    for k in ("denied", "denied again", "denied name"):
        assert "403" in str(res[k]), res[k]
    assert names == ["api.test"]  # the denied name never reached the server
    # once per host on the terminal, with the flag that would allow it
    assert err.count("denied other.test") == 1
    assert f"--allow-host other.test:{port}" in err
    assert "network: reached 1 host; denied 2: other.test \u00d72, denied.example \u00d71" in err
    rec = net_record(actor)
    assert [(r["host"], r["verdict"]) for r in rec] == [
        ("api.test", "allowed"), ("other.test", "denied"), ("other.test", "denied"),
        ("denied.example", "denied")]
    assert int(str(rec[0]["sent"])) > 0 and int(str(rec[0]["received"])) > 0
    assert rec[0]["port"] == port and rec[3]["port"] == 443


@pytest.mark.parametrize("mode", ["isolated", "filtered"])
def test_a_client_ignoring_the_proxy_reaches_nothing(
        actor: Actor, mode: str, tls_server: tuple[int, list[str]],
        host_services: dict[str, int], neighbour: Neighbour,
        dns_responder: tuple[int, list[bytes]]) -> None:
    port, names = tls_server
    wild, n = host_services["wild"], neighbour
    env = hosts_file(actor, "127.0.0.1 api.test\n")
    res, _, _ = probe(actor, ["--net", mode, "--allow-host", f"127.0.0.1:{port}"], {
        "tls 127.0.0.1": ["raw", "127.0.0.1", port],
        "wild 127.0.0.1": ["raw", "127.0.0.1", wild],
        "wild ::1": ["raw", "::1", wild],
        "wild host4": ["raw", n.host4, wild],
        "wild host6": ["raw", n.host6, wild],
        "neighbour": ["raw", n.peer4, n.port],
        "neighbour6": ["raw", n.peer6, n.port],
        "dns": ["dns"],
    }, env=env, extra={"dns": dns_responder[0]})
    for k, v in res.items():
        if k != "dns":
            assert refused(v), (k, v)
    dns = res["dns"]
    assert isinstance(dns, dict)
    assert "ROUTE" not in dns.values() and dns["lookup"] == "gaierror", dns
    assert dns["responder"] != "" and not str(dns["responder"]).startswith("ANSWERED")
    assert dns_responder[1] == [] and names == []


def test_host_mode_reaches_what_the_other_modes_refuse(
        actor: Actor, host_services: dict[str, int], neighbour: Neighbour) -> None:
    """The control: the same probe, without a network namespace, reaches every target (so
    the refusals above are the sandbox's doing, not a broken probe)."""
    wild, n = host_services["wild"], neighbour
    res, _, _ = probe(actor, ["--net", "host"], {
        "wild 127.0.0.1": ["raw", "127.0.0.1", wild],
        "wild ::1": ["raw", "::1", wild],
        "wild host4": ["raw", n.host4, wild],
        "neighbour": ["raw", n.peer4, n.port],
    })
    assert res == {"wild 127.0.0.1": "wild", "wild ::1": "wild6", "wild host4": "wild",
                   "neighbour": "neighbour"}


@pytest.mark.parametrize("mode", ["isolated", "filtered"])
def test_allow_port_reaches_that_host_port_and_nothing_else_of_the_host(
        actor: Actor, mode: str, host_services: dict[str, int], neighbour: Neighbour) -> None:
    db, wild, n = host_services["db"], host_services["wild"], neighbour
    env = hosts_file(actor, f"{n.host4} self.test\n{n.peer4} next.test\n127.0.0.1 lo.test\n")
    args = ["--net", mode, "--allow-port", str(db)]
    if mode == "filtered":
        # allowed names that resolve to the host or a private neighbour: still refused
        args += [f"--allow-host=self.test:{wild}", f"--allow-host=lo.test:{wild}",
                 f"--allow-host=next.test:{n.port}"]
    res, _, _ = probe(actor, args, {
        "db 127.0.0.1": ["raw", "127.0.0.1", db],
        "db ::1": ["raw", "::1", db],
        "wild 127.0.0.1": ["raw", "127.0.0.1", wild],
        "wild ::1": ["raw", "::1", wild],
        "wild host4": ["raw", n.host4, wild],
        "wild host6": ["raw", n.host6, wild],
        "proxy 127.0.0.1": ["proxy", f"127.0.0.1:{wild}"],
        "proxy [::1]": ["proxy", f"[::1]:{wild}"],
        "proxy host4": ["proxy", f"{n.host4}:{wild}"],
        "proxy self.test": ["proxy", f"self.test:{wild}"],
        "proxy lo.test": ["proxy", f"lo.test:{wild}"],
        "proxy next.test": ["proxy", f"next.test:{n.port}"],
        "proxy neighbour": ["proxy", f"{n.peer4}:{n.port}"],
    }, env=env)
    assert res["db 127.0.0.1"] == "db" and res["db ::1"] == "db"
    for k in ("wild 127.0.0.1", "wild ::1", "wild host4", "wild host6"):
        assert refused(res[k]), (k, res[k])
    for k, v in res.items():
        if k.startswith("proxy"):
            assert str(v).startswith("HTTP/1.1 403"), (k, v)


def test_a_connect_to_an_allowed_name_with_another_sni_is_refused(
        actor: Actor, tls_server: tuple[int, list[str]], cert: tuple[Path, Path]) -> None:
    port, names = tls_server
    env = hosts_file(actor, "127.0.0.1 api.test other.test\n")
    res, _, _ = probe(actor, ["--allow-host", f"api.test:{port}", "--allow-host",
                              f"127.0.0.1:{port}"], {
        "same": ["sni", "api.test", port, "api.test"],
        "other": ["sni", "api.test", port, "other.test"],
    }, cert=cert[0], env=env)
    assert str(res["same"]).startswith("ANSWERED HTTP/1.0 200")  # the control
    assert res["other"] == "refused HTTP/1.1 200 Connection established"
    assert names == ["api.test"]  # the mismatched handshake never reached the server
    rec = net_record(actor)
    assert rec[-1]["verdict"] == "denied" and "server name" in str(rec[-1]["reason"])


def test_none_has_loopback_only(actor: Actor, host_services: dict[str, int]) -> None:
    res, _, _ = probe(actor, ["--net", "none"], {
        "wild 127.0.0.1": ["raw", "127.0.0.1", host_services["wild"]],
        "db": ["raw", "127.0.0.1", host_services["db"]],
        "proxy": ["raw", "127.0.0.1", 3128],
    })
    assert all(v == "ConnectionRefusedError" for v in res.values()), res


@pytest.mark.parametrize(("args", "msg"), [
    (["--allow-host", "exa mple.com"], "--allow-host: 'exa mple.com' is not a host name"),
    (["--allow-host", "@nope"], "unknown group '@nope'"),
    (["--allow-host", "pypi.org:99999"], "is not a port between 1 and 65535"),
    (["--net", "host", "--allow-host", "pypi.org"], "--allow-host needs --net filtered"),
])
def test_malformed_allow_list_is_refused_before_anything_starts(
        actor: Actor, args: list[str], msg: str) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "-s", "bad", *args, "--", "true", cwd=repo)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and msg in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert not (actor.home / ".local" / "state" / "git-agent").exists() or not list(
        (actor.home / ".local" / "state" / "git-agent").rglob("meta.json"))
    with contextlib.suppress(subprocess.CalledProcessError):
        assert actor.git("branch", "--list", "agent/*", cwd=repo) == ""


CONNECT_EVIL = r"""
import socket, sys
for host in sys.argv[1:]:
    s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    s.sendall(b"CONNECT " + host.encode("latin-1") + b":443 HTTP/1.1\r\n\r\n")
    s.recv(200)
    s.close()
open("done.txt", "w").write("done\n")
"""


def test_every_decision_is_recorded_and_shown_by_review_with_names_quoted(actor: Actor) -> None:
    """The record of a filtered run: `review` sums it up, `review --net` lists it, `--json` has
    it; a host name the agent chose is printed quoted (it cannot rewrite the terminal)."""
    repo = actor.make_repo()
    (repo / "evil.py").write_text(CONNECT_EVIL)
    actor.own(repo)
    evil = "\x1b[2K\x1b[1Areached.test"
    p = actor.agent("run", "-s", "rec", "--allow-host", "api.test", "--", PY, "evil.py",
                    "plain.test", evil, cwd=repo, env=hosts_file(actor, ""))
    assert p.returncode == 0, p.stderr
    ours = [ln for ln in p.stderr.splitlines() if ln.startswith("git agent: network:")]
    assert ours and not any("\x1b" in ln for ln in ours), ours
    shown = '"\\033[2k\\033[1areached.test"'  # names are compared lower-case
    assert any(shown in ln for ln in ours), ours
    listed = actor.agent("review", "rec", "--net", cwd=repo)
    assert listed.returncode == 0 and "\x1b" not in listed.stdout, listed.stdout
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and all("denied" in ln for ln in lines), lines
    assert "plain.test:443" in lines[0] and f"{shown}:443" in lines[1]
    stat = actor.agent("review", "rec", "--stat", cwd=repo)
    assert "network: reached 0 hosts; denied 2: " in stat.stdout and "\x1b" not in stat.stdout
    got = json.loads(actor.agent("review", "rec", "--json", cwd=repo).stdout)
    assert sorted(e["host"] for e in got["net"]) == sorted(["plain.test", evil.lower()])  # as is
    assert {e["verdict"] for e in got["net"]} == {"denied"}
    # a session that changed no file but reached out is not one to overlook
    quiet = actor.agent("run", "-s", "quiet", "--allow-host", "api.test", "--", PY, "-c",
                        CONNECT_EVIL.replace('open("done.txt", "w").write("done\\n")', ""),
                        "quiet.test", cwd=repo, env=hosts_file(actor, ""))
    assert quiet.returncode == 0, quiet.stderr
    said = actor.agent("review", "quiet", cwd=repo)
    assert "network: reached 0 hosts; denied 1: quiet.test" in said.stderr, said.stderr
    listed = actor.agent("review", "quiet", "--net", cwd=repo)
    assert "quiet.test:443" in listed.stdout, listed.stderr
    host_run = actor.agent("run", "-s", "plain", "--", "sh", "-c", "echo x > y", cwd=repo)
    assert host_run.returncode == 0, host_run.stderr
    none = actor.agent("review", "plain", "--net", cwd=repo)
    assert none.returncode == 0 and "no network record" in none.stderr
