"""The forwarder inside the sandbox: loopback TCP ports handed to unix sockets, then the agent.

Run by the system's Python (`/usr/bin/python3 -I -S forward.py SPEC -- AGENT ARGV`, standard
library only: the package is not visible inside). It listens on 127.0.0.1 and ::1 for each
`PORT=SOCKET` of SPEC, detaches a daemon that passes each accepted connection (its fd) over
its unix socket (bind-mounted from the host, where git agent's proxy or port bridge listens),
and execs the agent. It holds no secret, needs no privilege and moves no data: an agent that
kills it only loses its own network. `relay` moves bytes with splice(2), in the kernel, for
git agent's proxy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable

CHUNK = 1 << 20
PASS = b"F"  # before a passed socket on the unix stream (a request never starts so)


def pump(src: socket.socket, dst: socket.socket, count: Callable[[int], None]) -> None:
    """Move bytes src -> dst until EOF, then half-close dst."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            import fcntl

            fcntl.fcntl(w, 1031, CHUNK)  # F_SETPIPE_SZ: fewer round trips
        except OSError:
            pass
        s, d = src.fileno(), dst.fileno()
        while not hasattr(os, "splice"):  # Python < 3.10: copy through user space
            data = src.recv(CHUNK)
            if not data:
                break
            count(len(data))
            dst.sendall(data)
        while hasattr(os, "splice"):
            n = os.splice(s, w, CHUNK)
            if n == 0:
                break
            count(n)
            while n:
                n -= os.splice(r, d, n)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
    finally:
        os.close(r)
        os.close(w)


def relay(a: socket.socket, b: socket.socket, counts: list[int] | None = None,
          first: bytes = b"") -> None:
    """Relay a <-> b (blocking sockets) until both directions end, then close both.

    counts (when given) gets [bytes a->b, bytes b->a] added; first is sent to b before."""
    import threading  # here: the forwarder itself starts faster without it

    totals = counts if counts is not None else [0, 0]

    def up(n: int) -> None:
        totals[0] += n

    def down(n: int) -> None:
        totals[1] += n

    def run(src: socket.socket, dst: socket.socket, add: Callable[[int], None]) -> None:
        try:
            pump(src, dst, add)
        except OSError:
            for x in (a, b):  # one side broke: end the other direction too
                with contextlib.suppress(OSError):
                    x.shutdown(socket.SHUT_RDWR)

    try:
        if first:
            b.sendall(first)
            up(len(first))
        t = threading.Thread(target=run, args=(b, a, down), daemon=True)
        t.start()
        run(a, b, up)
        t.join()
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def _listeners(port: int) -> list[socket.socket]:
    out = []
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind((addr, port))
        except OSError:
            s.close()
            if family == socket.AF_INET:
                raise
            continue  # no IPv6 loopback inside: IPv4 only
        s.listen(128)
        out.append(s)
    return out


def _serve(served: list[tuple[socket.socket, str]]) -> None:
    """Hand each accepted connection's socket to the host side of its unix socket (one byte
    and the fd, SCM_RIGHTS): the proxy then talks to the client itself, and no byte of the
    connection passes through this process."""
    import selectors

    sel = selectors.DefaultSelector()
    for ls, path in served:
        sel.register(ls, selectors.EVENT_READ, path)
    while True:
        for key, _ in sel.select():
            try:
                c, _ = key.fileobj.accept()  # type: ignore[union-attr]
            except OSError:
                continue
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                u.connect(key.data)
                u.sendmsg([PASS], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                    c.fileno().to_bytes(4, sys.byteorder))])
            except OSError:
                pass  # the host side is gone: no network, never another way out
            finally:
                u.close()
                c.close()


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: forward.py PORT=SOCKET... -- COMMAND...", file=sys.stderr)
        return 2
    cut = argv.index("--")
    pairs = [a.split("=", 1) for a in argv[:cut]]
    command = argv[cut + 1 :]
    try:
        served = [(ls, path) for port, path in pairs for ls in _listeners(int(port))]
    except OSError as e:
        print(f"git agent: the sandbox's network forwarder cannot listen: {e}", file=sys.stderr)
        return 126
    pid = os.fork()
    if pid == 0:  # the forwarder: a daemon under the sandbox's init, away from the terminal
        try:
            os.setsid()
            for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM):
                signal.signal(s, signal.SIG_IGN)
            if os.fork() != 0:
                os._exit(0)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            _serve(served)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    for ls, _ in served:
        ls.close()
    try:
        os.execvp(command[0], command)
    except OSError as e:
        print(f"git agent: {command[0]}: {e.strerror}", file=sys.stderr)
        return 127 if isinstance(e, FileNotFoundError) else 126


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
