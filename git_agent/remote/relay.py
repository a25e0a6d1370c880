"""The holder of a remote run (docs/remote.md, "Detached runs and network loss"): a process of
its own session (setsid), started by the worker, that runs `git agent run` with a pty (or
pipes, as the caller had them), keeps the last RING bytes of its output, and serves one attached
client at a time on a unix socket in a private directory. The connection can come and go; the
run goes on. Frames both ways: a type byte, a 4-byte length, the bytes."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import selectors
import signal
import socket
import struct
import subprocess
import termios
from collections import deque

RING = 64 << 10  # the recent output an attach replays first
# holder -> client: OUT, ERR (the agent's stdout, stderr), EXIT (its status, ascii)
# client -> holder: IN (stdin bytes), EOF (stdin ended: pipes only), WINCH (rows, cols)
OUT, ERR, EXIT, IN, EOF, WINCH = b"o", b"e", b"x", b"i", b"z", b"w"
MAX_FRAME = 1 << 20
COMM = "git-agent-hold"  # the holder's process name (/proc/PID/comm)


def frame(kind: bytes, data: bytes = b"") -> bytes:
    return kind + struct.pack(">I", len(data)) + data


class Frames:
    """Frames out of a byte stream, as they complete."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self.buf += data
        out: list[tuple[bytes, bytes]] = []
        while len(self.buf) >= 5:
            (n,) = struct.unpack(">I", self.buf[1:5])
            if n > MAX_FRAME:
                raise ValueError("frame too big")
            if len(self.buf) < 5 + n:
                break
            out.append((self.buf[:1], self.buf[5:5 + n]))
            self.buf = self.buf[5 + n:]
        return out


def _hangup_with_parent() -> None:
    """In the run's process before exec: SIGHUP when the holder dies (PR_SET_PDEATHSIG), as a
    pty's hangup would: a run never goes on orphaned, with no one to record how it ended."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGHUP, 0, 0, 0)


def peer_is_us(conn: socket.socket) -> bool:
    """SO_PEERCRED: the connecting process runs as our user (the directory's mode already keeps
    others out; this holds even for a socket passed around)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.geteuid())


class Holder:
    """The run, its output ring and the attached client."""

    def __init__(self, dirfd: int, argv: list[str], env: dict[str, str], cwd: str, tty: bool):
        self.dirfd = dirfd
        self.ring: deque[bytes] = deque()
        self.ring_size = 0
        self.client: socket.socket | None = None
        self.frames = Frames()
        self.pending_in = b""
        self.eof = False
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(f"/proc/self/fd/{dirfd}/sock")  # short, whatever the dir's path
        self.listener.listen(4)
        self.tty = tty
        self.outputs: dict[int, bytes] = {}
        if tty:
            pid, master = pty.fork()
            if pid == 0:  # the child: its own session, the pty its controlling terminal
                try:
                    _hangup_with_parent()
                    os.chdir(cwd)
                    os.execve(argv[0], argv, env)
                finally:
                    os._exit(127)
            self.pid, self.stdin = pid, master
            self.outputs[master] = OUT
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        else:
            p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True, preexec_fn=_hangup_with_parent)
            assert p.stdin and p.stdout and p.stderr
            self.pid, self.stdin = p.pid, p.stdin.fileno()
            self.outputs[p.stdout.fileno()] = OUT
            self.outputs[p.stderr.fileno()] = ERR
            self._popen = p  # keeps the pipes' file objects open
        for fd in self.outputs:
            self.sel.register(fd, selectors.EVENT_READ, "out")
        os.set_blocking(self.stdin, False)
        self.sel.register(self.listener, selectors.EVENT_READ, "listen")

    def _keep(self, data: bytes) -> None:
        self.ring.append(data)
        self.ring_size += len(data)
        while self.ring_size > RING and len(self.ring) > 1:
            self.ring_size -= len(self.ring.popleft())

    def _send(self, data: bytes) -> None:
        if self.client is None:
            return
        try:
            self.client.setblocking(True)
            self.client.settimeout(30)  # a client that stops reading is let go, the run goes on
            self.client.sendall(data)
        except OSError:
            self._drop_client()

    def _drop_client(self) -> None:
        if self.client is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.client)
            self.client.close()
            self.client = None

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        if not peer_is_us(conn):
            conn.close()
            return
        self._drop_client()  # the newest attach wins
        self.client = conn
        self.frames = Frames()
        self._send(b"".join(self.ring))
        if self.client is not None:
            self.sel.register(self.client, selectors.EVENT_READ, "client")

    def _from_client(self) -> None:
        assert self.client is not None
        try:
            data = self.client.recv(65536)
            got = self.frames.feed(data) if data else None
        except (OSError, ValueError):
            got = None
        if got is None:
            self._drop_client()  # gone (detached, or the connection lost): the run goes on
            return
        for kind, body in got:
            if kind == IN:
                self.pending_in += body
            elif kind == EOF and not self.tty:
                self.eof = True  # once what came before it is written
            elif kind == WINCH and self.tty and len(body) == 4:
                rows, cols = struct.unpack(">HH", body)
                with contextlib.suppress(OSError):
                    fcntl.ioctl(self.stdin, termios.TIOCSWINSZ,
                                struct.pack("HHHH", rows, cols, 0, 0))
        self._write_stdin()

    def _close_stdin(self) -> None:
        if self.stdin >= 0 and not self.tty:
            with contextlib.suppress(OSError):
                os.close(self.stdin)
            self.stdin = -1

    def _write_stdin(self) -> None:
        while self.pending_in and self.stdin >= 0:
            try:
                n = os.write(self.stdin, self.pending_in[:65536])
            except BlockingIOError:
                return
            except OSError:
                self.pending_in = b""
                return
            self.pending_in = self.pending_in[n:]
        if self.eof and not self.pending_in:
            self._close_stdin()

    def serve(self) -> tuple[int, int | None]:
        """Until the run's output ends; its exit status (128 + N when a signal N killed it) and
        that signal."""
        pidfd = os.pidfd_open(self.pid)
        self.sel.register(pidfd, selectors.EVENT_READ, "exited")
        exited = False
        while self.outputs:
            events = self.sel.select(0.2 if self.pending_in or exited else None)
            if exited and not events:
                break  # the run has ended and its output is drained (a stray holder of the
                #        pty or pipe, if any, does not keep us)
            for key, _ in events:
                if key.data == "exited":
                    exited = True
                    self.sel.unregister(pidfd)
                elif key.data == "listen":
                    self._accept()
                elif key.data == "client":
                    if self.client is not None:
                        self._from_client()
                else:
                    fd = int(key.fd)
                    try:
                        data = os.read(fd, 65536)
                    except OSError:  # EIO: the pty's last holder is gone
                        data = b""
                    if not data:
                        self.sel.unregister(fd)
                        del self.outputs[fd]
                        continue
                    chunk = frame(self.outputs[fd], data)
                    self._keep(chunk)
                    self._send(chunk)
            self._write_stdin()
        os.close(pidfd)
        _, raw = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(raw)
        return (128 - code, -code) if code < 0 else (code, None)

    def finish(self, status: int, signum: int | None) -> None:
        """The status file first (what fetch reads), then the client told, then the socket
        gone."""
        write_json(self.dirfd, "status", {"status": status, "signal": signum})
        self._send(frame(EXIT, str(status).encode()))
        self._drop_client()
        with contextlib.suppress(OSError):
            os.unlink("sock", dir_fd=self.dirfd)
        self.listener.close()


def write_json(dirfd: int, name: str, obj: dict[str, object]) -> None:
    tmp = f".{name}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                 0o600, dir_fd=dirfd)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)


def _lock(dirfd: int) -> int:
    return os.open("lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600,
                   dir_fd=dirfd)


def held(dirfd: int) -> bool:
    """Does a holder live for this run directory (it keeps the lock for its whole life; the
    kernel lets go of it when the holder dies, however)?"""
    fd = _lock(dirfd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def hold(dirfd: int, argv: list[str], env: dict[str, str], cwd: str, tty: bool,
         ready: int) -> None:
    """In the holder (already its own session, its stdio /dev/null): start the run, say ready
    on the pipe, serve until the run ends, then record how it ended."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as f:
        f.write(COMM)  # ps tells it from the worker it was forked from (same cmdline)
    lock = _lock(dirfd)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # for life; a second holder fails here
    h = Holder(dirfd, argv, env, cwd, tty)
    os.write(ready, b"1")
    os.close(ready)
    h.finish(*h.serve())
