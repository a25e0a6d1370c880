"""TIOCSTI/TIOCLINUX: typing into the user's terminal (CVE-2017-5226, CVE-2019-10063)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import sandbox_as

pytestmark = pytest.mark.sandbox

# A child with the pty as its controlling terminal pushes "Q" (TIOCSTI), "Z" (TIOCSTI with the
# high bits of cmd set, which the kernel truncates away) and asks for TIOCLINUX; the parent reads
# the master side, where injected bytes show up as echoed input.
INJECT = r"""
import ctypes, fcntl, json, os, pty, select, termios, time
pid, master = pty.fork()
if pid == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    def ioctl(cmd, ch):
        c = ctypes.c_char(ch)
        ret = libc.syscall(ctypes.c_long(16 if os.uname().machine == "x86_64" else 29),
                           ctypes.c_long(0), ctypes.c_ulong(cmd), ctypes.byref(c))
        return 0 if ret == 0 else ctypes.get_errno()
    res = {"tiocsti": ioctl(termios.TIOCSTI, b"Q"),
           "high": ioctl(0x1_0000_0000 | termios.TIOCSTI, b"Z"),
           "tioclinux": ioctl(0x541C, b"\x02")}
    with open("/tmp/res.json", "w") as f:
        json.dump(res, f)
    os._exit(0)
# the echo may come in pieces, and late: read until both came or the child's side closed (EIO)
seen, deadline = b"", time.monotonic() + 10
while not (b"Q" in seen and b"Z" in seen) and time.monotonic() < deadline:
    if select.select([master], [], [], 0.1)[0]:
        try:
            chunk = os.read(master, 100)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
os.waitpid(pid, 0)
res = json.load(open("/tmp/res.json"))
res["injected"] = seen.decode(errors="replace")
print(json.dumps(res))
"""


def _run(user: str, *, seccomp: bool) -> dict[str, object]:
    p = sandbox_as(user, INJECT, seccomp=seccomp)
    assert p.returncode == 0, p.stderr
    out: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


def test_tiocsti_and_tioclinux_are_refused(user: str) -> None:
    res = _run(user, seccomp=True)
    assert res["tiocsti"] == 1  # EPERM
    assert res["high"] == 1
    assert res["tioclinux"] == 1
    assert "Q" not in str(res["injected"]) and "Z" not in str(res["injected"])


def test_tiocsti_works_without_the_filter(user: str) -> None:
    """The control: on this kernel the attack really types (dev.tty.legacy_tiocsti=1)."""
    try:
        legacy = Path("/proc/sys/dev/tty/legacy_tiocsti").read_text().strip()
    except OSError:
        legacy = "1"  # before Linux 6.2 there is no switch: TIOCSTI always works
    if legacy == "0":
        pytest.skip("dev.tty.legacy_tiocsti=0: the kernel itself refuses TIOCSTI here")
    res = _run(user, seccomp=False)
    assert res["tiocsti"] == 0 and res["high"] == 0
    assert "Q" in str(res["injected"]) and "Z" in str(res["injected"])
