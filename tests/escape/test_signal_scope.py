"""kill(2) of a host process from inside (possible only when the sandbox shares the pid ns)."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import as_user, sandbox_as

from git_agent.sandbox import landlock

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(landlock.abi_version() < landlock.SCOPE_MIN_ABI,
                       reason="needs Landlock ABI >= 6 (Linux 6.12)"),
]

KILL = r"""
import json, os, signal
try:
    os.kill(PID, signal.SIGTERM)
    print(json.dumps({"killed": True}))
except OSError as e:
    print(json.dumps({"killed": False, "errno": e.errno}))
"""


@pytest.fixture
def host_victim(user: str) -> Iterator[subprocess.Popen[bytes]]:
    """A host process of the same user, so only the sandbox boundary can stop the signal."""
    p = subprocess.Popen(as_user(user, ["sleep", "60"]))
    # wait until setpriv exec'd sleep: the pid must belong to `user`
    uid, deadline = pwd.getpwnam(user).pw_uid, time.monotonic() + 10
    while True:
        try:
            exe = os.path.basename(os.readlink(f"/proc/{p.pid}/exe"))
            status = Path(f"/proc/{p.pid}/status").read_text()
        except OSError:
            exe, status = "", ""
        uids = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("Uid:")), [])
        if exe == "sleep" and uids == [str(uid)] * 4:
            break
        if time.monotonic() > deadline:
            p.kill()
            p.wait()
            pytest.fail(f"the victim never became {user}'s sleep: {exe!r} {uids}")
        time.sleep(0.02)
    yield p
    p.kill()
    p.wait()


def _kill(user: str, pid: int, *, landlock_on: bool) -> dict[str, object]:
    # share_pid: without a pid namespace of its own the sandbox can name host pids at all
    p = sandbox_as(user, f"PID = {pid}\n" + KILL, share_pid=True, landlock=landlock_on)
    assert p.returncode == 0, p.stderr
    out: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


def test_host_process_cannot_be_signalled(
    user: str, host_victim: subprocess.Popen[bytes]
) -> None:
    assert _kill(user, host_victim.pid, landlock_on=True) == {"killed": False, "errno": 1}
    assert host_victim.poll() is None


def test_host_process_can_be_signalled_without_scoping(
    user: str, host_victim: subprocess.Popen[bytes]
) -> None:
    assert _kill(user, host_victim.pid, landlock_on=False) == {"killed": True}
    assert host_victim.wait(timeout=5) == -15
