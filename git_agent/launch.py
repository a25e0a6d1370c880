"""Start bwrap with a plan, pass the agent's terminal through, and return its real exit status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from git_agent.mounts import Plan


@dataclass(frozen=True)
class Outcome:
    exit_status: int  # the agent's, 128+N when it died from signal N
    started: bool  # False when bwrap failed before starting the agent


@dataclass
class Hooks:
    """Optional pieces the hardening adds: seccomp program, Landlock, a network set-up step."""

    seccomp: bytes | None = None
    preexec: Callable[[], None] | None = None
    # called with bwrap's child pid before the agent is let go (e.g. start pasta); returns a
    # cleanup function
    network: Callable[[int], Callable[[], None]] | None = None


def _read_json_docs(data: bytes) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    dec = json.JSONDecoder()
    text = data.decode(errors="replace")
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return docs
        try:
            obj, i = dec.raw_decode(text, i)
        except ValueError:
            return docs
        if isinstance(obj, dict):
            docs.append(obj)


def _pipe_with(data: bytes) -> int:
    """A readable fd holding data (bwrap reads --seccomp programs to EOF)."""
    r, w = os.pipe()
    os.write(w, data)  # a filter is far below the pipe buffer
    os.close(w)
    return r


def run(
    plan: Plan, *, bwrap: Path, hooks: Hooks, started: Callable[[], None] | None = None
) -> Outcome:
    """Run the plan; `started` is called once bwrap runs (work that must not delay the agent)."""
    status_r, status_w = os.pipe()
    fds = [status_w]
    extra = ["--json-status-fd", str(status_w)]
    seccomp_fd = None
    if hooks.seccomp is not None:
        seccomp_fd = _pipe_with(hooks.seccomp)
        fds.append(seccomp_fd)
        extra += ["--seccomp", str(seccomp_fd)]
    info_r = info_w = block_r = block_w = None
    if hooks.network is not None:
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        fds += [info_w, block_r]
        extra += ["--info-fd", str(info_w), "--block-fd", str(block_r)]
    plan.extra = extra
    argv = plan.argv(bwrap)

    forwarded: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child is not None and child.poll() is None:
            forwarded.append(signum)
            child.send_signal(signum)

    def ignore(_signum: int, _frame: FrameType | None) -> None:
        """^C and ^\\ reach the agent through the terminal; we wait for it to exit."""

    old = {
        s: signal.getsignal(s)
        for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP)
    }
    signal.signal(signal.SIGINT, ignore)
    signal.signal(signal.SIGQUIT, ignore)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)
    cleanup: Callable[[], None] | None = None
    try:
        child = subprocess.Popen(argv, pass_fds=fds, preexec_fn=hooks.preexec, close_fds=True)
        for fd in fds:
            os.close(fd)
        if hooks.network is not None:
            assert info_r is not None and block_w is not None
            try:
                info = _read_json_docs(_read_until_eof_or_doc(info_r))
                pid = next((d.get("child-pid") for d in info if "child-pid" in d), None)
                if isinstance(pid, int):  # else bwrap failed early and says why
                    cleanup = hooks.network(pid)
                    os.write(block_w, b"1")
            except BaseException:
                child.kill()  # fail closed: no agent without the network it was promised
                child.wait()
                raise
            finally:
                os.close(info_r)
                os.close(block_w)
        if started is not None:
            started()
        child.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if cleanup is not None:
            cleanup()
    with os.fdopen(status_r, "rb") as f:
        docs = _read_json_docs(f.read())
    code = next((d["exit-code"] for d in docs if isinstance(d.get("exit-code"), int)), None)
    if code is None:
        return Outcome(exit_status=child.returncode if child.returncode > 0 else 1, started=False)
    assert isinstance(code, int)
    return Outcome(exit_status=code, started=True)


def _read_until_eof_or_doc(fd: int) -> bytes:
    """bwrap writes its info document and keeps the fd open: read until one whole JSON object."""
    buf = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return buf
        buf += chunk
        if _read_json_docs(buf):
            return buf
