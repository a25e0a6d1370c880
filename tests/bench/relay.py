#!/usr/bin/env python3
"""Where a proxied download's time and CPU go: 100 MB from a loopback server to a client,
directly and through git agent's relay (forward.pump, as the proxy runs it for plain HTTP),
alternating, without bwrap or git agent around it. Three processes (server, relay, client),
each one's CPU time measured; prints medians.

    python tests/bench/relay.py [--rounds 9] [--variant pump|copy|split|c]

`copy` moves the bytes through user space (recv_into + sendall), `split` splices with a
reader and a writer thread, `c` is pump's loop in C (crelay.c, built with `cc -O2`): all
baselines for the splice loop, not used by git agent. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from git_agent.egress import forward  # noqa: E402

SIZE = 100 << 20
CHUNK = 1 << 20


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _task_cpu(pid: int) -> float:
    """CPU time of pid's main thread, in ns resolution (schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def _server(ls: socket.socket) -> None:
    payload = memoryview(bytes(SIZE))
    while True:
        c, _ = ls.accept()
        with c:
            c.recv(4096)
            c.sendall(payload)


def copy(src: socket.socket, dst: socket.socket, count: Callable[[int], None]) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := src.recv_into(buf):
        count(n)
        dst.sendall(view[:n])
    dst.shutdown(socket.SHUT_WR)


def split(src: socket.socket, dst: socket.socket, count: Callable[[int], None]) -> None:
    r, w = os.pipe2(os.O_CLOEXEC)

    def drain() -> None:
        while os.splice(r, dst.fileno(), CHUNK):
            pass

    t = threading.Thread(target=drain)
    t.start()
    try:
        while n := os.splice(src.fileno(), w, CHUNK):
            count(n)
    finally:
        os.close(w)
        t.join()
        os.close(r)
    dst.shutdown(socket.SHUT_WR)


def _relay(ls: socket.socket, upstream: int, out: int, variant: str) -> None:
    move = {"pump": forward.pump, "copy": copy, "split": split}[variant]
    while True:
        c, _ = ls.accept()
        start = _cpu()
        up = socket.create_connection(("127.0.0.1", upstream))
        up.sendall(c.recv(4096))
        calls = [0]

        def one(n: int, calls: list[int] = calls) -> None:
            calls[0] += 1

        move(up, c, one)
        up.close()
        c.close()
        os.write(out, b"%f %d\n" % (_cpu() - start, calls[0]))


def _client(port: int) -> tuple[float, float, int]:
    buf = bytearray(CHUNK)
    c0, t0 = _cpu(), time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    got = calls = 0
    while k := s.recv_into(buf):
        got += k
        calls += 1
    s.close()
    assert got == SIZE, got
    return time.perf_counter() - t0, _cpu() - c0, calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--variant", default="pump", choices=["pump", "copy", "split", "c"])
    args = ap.parse_args()
    crelay = ""
    if args.variant == "c":
        import subprocess
        import tempfile

        crelay = os.path.join(tempfile.mkdtemp(prefix="crelay-"), "crelay")
        subprocess.run(["cc", "-O2", "-o", crelay, str(Path(__file__).with_name("crelay.c"))],
                       check=True)
    ls = socket.create_server(("127.0.0.1", 0))
    rl = socket.create_server(("127.0.0.1", 0))
    r, w = os.pipe()
    server = os.fork()
    if server == 0:
        rl.close()
        _server(ls)
    relay = os.fork()
    if relay == 0:
        if crelay:
            os.set_inheritable(rl.fileno(), True)
            os.set_inheritable(w, True)
            os.execv(crelay, [crelay, str(rl.fileno()), str(ls.getsockname()[1]), str(w)])
        _relay(rl, ls.getsockname()[1], w, args.variant)
    ls_port, rl_port = ls.getsockname()[1], rl.getsockname()[1]
    ls.close()
    rl.close()
    answers = os.fdopen(r)
    rows: dict[str, list[tuple[float, float, float, float, int, int]]] = {"direct": [], "relay": []}
    try:
        for i in range(args.rounds):
            for how in ("direct", "relay") if i % 2 == 0 else ("relay", "direct"):
                s0 = _task_cpu(server)
                wall, ccpu, crecv = _client(ls_port if how == "direct" else rl_port)
                rcpu, rcalls = (0.0, 0) if how == "direct" else (
                    float((x := answers.readline().split())[0]), int(x[1]))
                time.sleep(0.05)  # the server's thread is done: its CPU time is final
                rows[how].append((wall, ccpu, rcpu, _task_cpu(server) - s0, crecv, rcalls))
    finally:
        os.kill(server, 9)
        os.kill(relay, 9)
        os.waitpid(server, 0)
        os.waitpid(relay, 0)
    mb = SIZE / (1 << 20)
    med = {h: [statistics.median(col) for col in zip(*v, strict=True)] for h, v in rows.items()}
    print(f"100 MB over loopback, {args.rounds} rounds alternating, variant {args.variant}, "
          f"load {os.getloadavg()[0]:.1f}")
    for how, (wall, ccpu, rcpu, scpu, crecv, rcalls) in med.items():
        walls = sorted(x[0] for x in rows[how])
        total = ccpu + rcpu + scpu
        print(f"  {how:<6} {mb / wall:5.0f} MB/s ({mb / walls[-1]:.0f}-{mb / walls[0]:.0f})  "
              f"CPU ms: client {1e3 * ccpu:.0f}, relay {1e3 * rcpu:.0f}, server "
              f"{1e3 * scpu:.0f}, sum {1e3 * total:.0f} = {total / wall:.2f} cores busy  "
              f"(client recvs {crecv:.0f}, relay reads {rcalls:.0f})")
    ratio = statistics.median(d[0] / p[0] for d, p in zip(rows["direct"], rows["relay"],
                                                           strict=True))
    print(f"  relay / direct throughput: {med['direct'][0] / med['relay'][0]:.0%} of medians, "
          f"{ratio:.0%} median of rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
