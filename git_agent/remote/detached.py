"""The remote's side of runs that outlive their connection (docs/remote.md, "Detached runs and
network loss"): every run on a remote is started by the worker as a holder of its own session
(relay.py) in a private run directory of the remote user; `--detach` leaves it there, the
ticketed run and `attach` are clients of its socket, and the fetch op reads how it ended."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import termios
import tty as ttys
from urllib.parse import quote

from git_agent.errors import GitAgentError
from git_agent.remote import relay

DETACH_KEY = b"\x1d"  # ^] on an attached terminal: leave the run, it goes on


def _private(parent: int | str, name: str) -> int:
    """The directory name under parent, made 0700 when missing; refused unless it is a real
    directory of ours that nobody else may enter (an attacker's pre-made dir or link is not
    used)."""
    dir_fd = parent if isinstance(parent, int) else None
    path = name if dir_fd is not None else os.path.join(str(parent), name)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700, dir_fd=dir_fd)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError as e:  # a link (ELOOP), a file (ENOTDIR)
        raise GitAgentError(f"the run directory {path} is not a directory of this user's "
                            f"({e.strerror}): refused") from None
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise GitAgentError(f"the run directory {path} is not private to this user (mode 0700, "
                            "owned by you): refused")
    return fd


def run_dir(repo_id: str, session: str) -> int:
    """The run directory of (repository, session): DATA/runs/<repo-id>-<session>, both levels
    private. An fd: every use is relative to it (the socket's path stays short)."""
    from git_agent.remote import host

    root = host.data_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    runs = _private(str(root), "runs")
    try:
        return _private(runs, f"{repo_id}-{quote(session, safe='')}")
    finally:
        os.close(runs)


def _read_json(dirfd: int, name: str) -> dict[str, object] | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    except OSError:
        return None
    with os.fdopen(fd) as f:
        try:
            got = json.load(f)
        except ValueError:
            return None
    return got if isinstance(got, dict) else None


def _connect(dirfd: int) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(f"/proc/self/fd/{dirfd}/sock")
    except OSError:
        s.close()
        return None
    return s


def state(repo_id: str, session: str) -> dict[str, object]:
    """How the session's last run here stands: running (its holder holds the run's lock; never
    a connection, which would take an attached client's place), ended (status, the signal
    that killed it), or lost (no status, no holder: killed with its holder)."""
    dirfd = run_dir(repo_id, session)
    try:
        done = _read_json(dirfd, "status")
        if done is not None:
            return {"running": False, "status": done.get("status"), "signal": done.get("signal"),
                    "checkpointed": bool(done.get("checkpointed"))}
        if _read_json(dirfd, "run.json") is None:
            return {"running": False, "status": None, "known": False}
        if relay.held(dirfd):
            return {"running": True}
        return {"running": False, "status": None, "lost": True}
    finally:
        os.close(dirfd)


def refuse_if_running(repo_id: str, session: str) -> None:
    if state(repo_id, session).get("running"):
        raise GitAgentError(f"session {session!r} still runs on this remote: `git agent attach "
                            f"{session}` reconnects to it")


def start(repo_id: str, session: str, *, argv: list[str], env: dict[str, str], cwd: str,
          tty: bool) -> None:
    """Start the run under a holder of its own session (double fork, setsid): it survives this
    worker, its ssh channel and sshd. Returns once the holder listens."""
    dirfd = run_dir(repo_id, session)
    try:
        for name in ("status", "sock"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dirfd)
        relay.write_json(dirfd, "run.json", {"cwd": cwd, "tty": tty})
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the holder's side
            _become_holder(dirfd, argv, env, cwd, tty, r, w)
        os.close(w)
        os.waitpid(pid, 0)
        with os.fdopen(r, "rb") as f:
            ok = f.read(1)
        if ok != b"1":
            raise GitAgentError("the run could not be started here")
    finally:
        os.close(dirfd)


def _become_holder(dirfd: int, argv: list[str], env: dict[str, str], cwd: str, tty: bool,
                   r: int, w: int) -> None:
    try:
        os.close(r)
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        keep = {0, 1, 2, dirfd, w}
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in keep:
                with contextlib.suppress(OSError):
                    os.close(int(name))
        relay.hold(dirfd, argv, env, cwd, tty, ready=w)
    finally:
        os._exit(0)


def checkpoint(repo_id: str, session: str) -> None:
    """A run killed before its own capture (a signal, or its holder gone): `git agent capture`
    of the session here, once, so that fetch brings what it left."""
    st = state(repo_id, session)
    if st.get("running") or st.get("checkpointed") or not (st.get("signal") or st.get("lost")):
        return
    dirfd = run_dir(repo_id, session)
    try:
        spec = _read_json(dirfd, "run.json") or {}
        cwd = spec.get("cwd")
        if isinstance(cwd, str) and os.path.isdir(cwd):
            subprocess.run([sys.executable, "-m", "git_agent", "capture", session], cwd=cwd,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        relay.write_json(dirfd, "status", {"status": st.get("status"), "signal": st.get("signal"),
                                           "checkpointed": True})
    finally:
        os.close(dirfd)


def attach(repo_id: str, session: str) -> int:
    """This worker's stdio joined to the run (the ssh channel of `run --on` or `attach`): the
    agent's output out, your input in; on a terminal ^] leaves it running. Returns the run's
    exit status; 0 when detached; 1 when the run is not there."""
    dirfd = run_dir(repo_id, session)
    try:
        conn = _connect(dirfd)
    finally:
        os.close(dirfd)
    if conn is None:
        sys.stderr.write(f"git agent: session {session!r} is not running here\n")
        return 1
    on_tty = os.isatty(0)
    old = termios.tcgetattr(0) if on_tty else None
    winch = [True]
    if on_tty:
        ttys.setraw(0, termios.TCSANOW)  # TCSAFLUSH would drop what you typed ahead
        signal.signal(signal.SIGWINCH, lambda *_: winch.__setitem__(0, True))
    try:
        return _pump(conn, on_tty, winch, session)
    finally:
        if old is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, old)
        conn.close()


def _pump(conn: socket.socket, on_tty: bool, winch: list[bool], session: str) -> int:
    frames = relay.Frames()
    reading_stdin = True
    while True:
        if on_tty and winch[0]:
            winch[0] = False
            import fcntl
            import struct

            size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
            rows, cols = struct.unpack("HHHH", size)[:2]
            conn.sendall(relay.frame(relay.WINCH, struct.pack(">HH", rows, cols)))
        try:
            ready, _, _ = select.select([conn] + ([0] if reading_stdin else []), [], [])
        except InterruptedError:
            continue
        if 0 in ready:
            data = os.read(0, 65536)
            if on_tty and DETACH_KEY in data:
                before = data.split(DETACH_KEY, 1)[0]
                if before:
                    conn.sendall(relay.frame(relay.IN, before))
                os.write(2, f"\r\n[detached from session {session!r}: it goes on; `git agent "
                            f"attach {session}` reconnects]\r\n".encode())
                return 0
            if data:
                conn.sendall(relay.frame(relay.IN, data))
            else:
                reading_stdin = False
                if not on_tty:
                    conn.sendall(relay.frame(relay.EOF))
        if conn in ready:
            data = conn.recv(65536)
            if not data:
                sys.stderr.write(f"git agent: the run of session {session!r} ended without an "
                                 "exit status (killed?)\n")
                return 1
            for kind, body in frames.feed(data):
                if kind == relay.EXIT:
                    return int(body or b"1")
                _write_all(2 if kind == relay.ERR else 1, body)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
