"""Syscalls that reach past the sandbox: io_uring, keyrings, modules, time... and foreign ABIs."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from helpers import sandbox_as

from git_agent.sandbox import seccomp

pytestmark = pytest.mark.sandbox

ARCH = seccomp.native_arch()

# Every denied syscall called with zero arguments (the filter answers before the kernel looks at
# them), plus a real io_uring_setup and a real keyctl, which do work without the filter.
CALLS = r"""
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    ret = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return "ok" if ret >= 0 else ctypes.get_errno()
res = {name: call(nr, 0, 0, 0, 0, 0, 0) for name, nr in TABLE.items()}
params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
ret = libc.syscall(ctypes.c_long(425), ctypes.c_long(4), params)
res["real io_uring_setup"] = "ok" if ret >= 0 else ctypes.get_errno()
res["real keyctl"] = call(TABLE["keyctl"], 0, -3)  # KEYCTL_GET_KEYRING_ID, session keyring
if X32:
    res["x32 getpid"] = call(0x40000000 | 39)
print(json.dumps(res))
"""


def _calls(user: str, *, seccomp_on: bool) -> dict[str, object]:
    table = {name: nrs[ARCH] for name, nrs in seccomp.DENIED.items()}
    code = f"TABLE = {table!r}\nX32 = {ARCH == 'x86_64'}\n" + CALLS
    p = sandbox_as(user, code, seccomp=seccomp_on)
    assert p.returncode == 0, p.stderr
    out: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


def test_denied_syscalls_fail_with_eperm(user: str) -> None:
    res = _calls(user, seccomp_on=True)
    assert res == {k: 1 for k in res}, res  # all EPERM
    assert set(seccomp.DENIED) < set(res)


def test_io_uring_and_keyctl_work_without_the_filter(user: str) -> None:
    res = _calls(user, seccomp_on=False)
    if Path("/proc/sys/kernel/io_uring_disabled").read_text().strip() == "0":
        assert res["real io_uring_setup"] == "ok"
    assert res["real keyctl"] == "ok"
    if ARCH == "x86_64":
        assert res["x32 getpid"] != 1  # ENOSYS without CONFIG_X86_X32_ABI


# i386 getpid through int 0x80 from a 64-bit process: mov eax, 20; int 0x80; ret
INT80 = r"""
import ctypes, mmap
page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(bytes.fromhex("b814000000cd80c3"))
addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
print("i386 getpid:", ctypes.CFUNCTYPE(ctypes.c_int)(addr)())
"""


@pytest.mark.skipif(ARCH != "x86_64", reason="int 0x80 is the x86_64 way into a foreign ABI")
def test_foreign_arch_syscall_kills_the_process(user: str) -> None:
    control = sandbox_as(user, INT80, seccomp=False)
    if control.returncode != 0:
        pytest.skip(f"no ia32 emulation in this kernel: {control.stderr.strip()[-200:]}")
    assert "i386 getpid:" in control.stdout
    p = sandbox_as(user, INT80, seccomp=True)
    assert "i386 getpid:" not in p.stdout
    # bwrap reports the child's death by signal as 128 + SIGSYS
    assert p.returncode in (128 + signal.SIGSYS, -signal.SIGSYS), (p.returncode, p.stderr)
