"""Network modes: pasta gives an isolated sandbox outbound connections and, of the host's
loopback, only the allowed ports (host services on other addresses answer as to any peer)."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from git_agent import proc
from git_agent.errors import SandboxUnavailable

MODES = ("host", "none", "isolated")

_TUN = "/dev/net/tun"
_NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1), linux/nsfs.h
_INSTALL = "install pasta: apt install passt (Debian, Ubuntu) or dnf install passt (Fedora)"


def bwrap_args(*, mode: str) -> list[str]:
    """The bwrap options for a network mode: host shares ours, none and isolated get a new one.

    In none the sandbox has only loopback; in isolated, start_pasta adds an interface once bwrap
    has reported the sandbox's pid (so bwrap also needs --info-fd and --block-fd).
    """
    if mode not in MODES:
        raise ValueError(f"unknown network mode {mode!r}")
    return [] if mode == "host" else ["--unshare-net"]


def check_pasta() -> Path:
    """Return pasta's path, or raise SandboxUnavailable saying how to make isolated mode work."""
    found = proc.which("pasta")
    if found is None:
        raise SandboxUnavailable(f"--net isolated needs pasta, which is not on PATH; {_INSTALL}")
    try:
        os.close(os.open(_TUN, os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        if e.errno == errno.ENOENT:
            fix = "load the tun module: modprobe tun"
        else:
            fix = (
                f"let users open it: chmod 0666 {_TUN} (the usual mode; tun devices are "
                "created per network namespace, so this grants nothing on the host's network), "
                "and keep it with a udev rule: "
                'echo \'KERNEL=="tun", MODE="0666"\' > /etc/udev/rules.d/60-tun.rules'
            )
        raise SandboxUnavailable(
            f"--net isolated needs {_TUN}, which cannot be opened ({e.strerror}); {fix}; "
            "or use --net none"
        ) from e
    return Path(found)


@dataclass
class Pasta:
    """A running pasta attached to a sandbox's network namespace."""

    process: subprocess.Popen[bytes]
    argv: list[str]

    def stop(self, *, timeout: float = 5.0) -> None:
        """Terminate and reap pasta; safe to call more than once."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Pasta:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pasta_argv(
    *, pasta: Path, allow_ports: Sequence[int], userns: str | None, netns: str, ready: str
) -> list[str]:
    """pasta's command line: only the allowed host loopback TCP ports, nothing else forwarded."""
    ports = sorted(set(allow_ports))
    for p in ports:
        if not 1 <= p <= 65535:
            raise ValueError(f"not a TCP port: {p}")
    argv = [
        os.fspath(pasta),
        "--foreground",  # our child, so stop() can reap it; readiness comes from --pid
        "--quiet",
        "--config-net",  # address, routes and DNS copied from the host's default interface
        "--no-map-gw",  # the gateway address is the real gateway, not the host's loopback
    ]
    options = {
        # Sandbox loopback ports forwarded to the host's loopback; the default "auto" would
        # forward every port bound on the host.
        "--tcp-ns": ",".join(map(str, ports)) if ports else "none",
        "--udp-ns": "none",
        "--tcp-ports": "none",  # nothing from outside into the sandbox
        "--udp-ports": "none",
        "--pid": ready,
    }
    for option, value in options.items():
        argv += [option, value]
    if os.geteuid() == 0:
        # As root pasta switches to nobody, who may not enter namespaces owned by root.
        argv += ["--runas", "0:0"]
    if userns is not None:
        argv += ["--userns", userns]
    return [*argv, "--netns", netns]


def start_pasta(*, child_pid: int, allow_ports: Sequence[int], timeout: float = 10.0) -> Pasta:
    """Attach pasta to the network namespace of bwrap's child and return once it is up.

    child_pid is the "child-pid" bwrap reports on --info-fd while it holds the sandbox on
    --block-fd; write to the block fd after this returns. Call stop() after the sandbox exits.
    """
    pasta = check_pasta()
    try:
        netns = os.open(f"/proc/{child_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SandboxUnavailable(f"cannot open the sandbox's network namespace: {e}") from e
    fds = [netns]
    try:
        if os.fstat(netns).st_ino == os.stat("/proc/self/ns/net").st_ino:
            raise SandboxUnavailable("the sandbox shares our network namespace (no --unshare-net)")
        # pasta must join the user namespace that owns the network namespace. Unprivileged bwrap
        # nests a second user namespace before it blocks, so /proc/PID/ns/user is the wrong one.
        userns = fcntl.ioctl(netns, _NS_GET_USERNS)
        fds.append(userns)
        same_userns = os.fstat(userns).st_ino == os.stat("/proc/self/ns/user").st_ino
        ready_r, ready_w = os.pipe()
        fds += [ready_r, ready_w]
        argv = pasta_argv(
            pasta=pasta,
            allow_ports=allow_ports,
            userns=None if same_userns else f"/proc/self/fd/{userns}",
            netns=f"/proc/self/fd/{netns}",
            ready=f"/proc/self/fd/{ready_w}",  # pasta writes its pid here once configured
        )
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(netns, userns, ready_w),
                start_new_session=True,  # ^C at the terminal is for the agent, not for pasta
                preexec_fn=_die_with_parent(),
            )
            os.close(ready_w)
            fds.remove(ready_w)
            running = Pasta(process=proc, argv=argv)
            if not _wait_ready(ready_r, timeout=timeout):
                running.stop()
                log.seek(0)
                lines = [
                    ln
                    for ln in log.read().decode(errors="replace").splitlines()
                    if ln.strip() and "to syslog" not in ln
                ]
                why = lines[-1] if lines else f"exit status {proc.returncode}"
                raise SandboxUnavailable(f"pasta could not set up the sandbox's network: {why}")
        return running
    finally:
        for fd in fds:
            os.close(fd)


def _die_with_parent() -> Callable[[], None]:
    """A preexec_fn: pasta gets SIGTERM when we die, so it never outlives a killed git-agent.

    The signal comes when the *thread* that started pasta exits; start it from the main thread.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    args = (ctypes.c_int(1), ctypes.c_ulong(signal.SIGTERM))  # PR_SET_PDEATHSIG
    parent = os.getpid()
    getppid = os.getppid

    def preexec() -> None:
        prctl(*args)
        if getppid() != parent:  # we died before the prctl: nobody will stop pasta
            raise OSError("parent exited")

    return preexec


def _wait_ready(fd: int, *, timeout: float) -> bool:
    """True once pasta wrote its pid (a whole line); False on EOF (it died) or timeout."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return False
        chunk = os.read(fd, 64)
        if not chunk:
            return False
        buf += chunk
    return True
