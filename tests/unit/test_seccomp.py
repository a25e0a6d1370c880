"""The seccomp program, run through a small classic-BPF interpreter (no kernel needed)."""

from __future__ import annotations

import errno
import re
import struct
from pathlib import Path

import pytest

from git_agent.errors import SandboxUnavailable
from git_agent.sandbox import seccomp

EPERM = seccomp.RET_ERRNO | errno.EPERM
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "i386": 0x40000003, "arm": 0x40000028}


def run_bpf(prog: bytes, *, arch: int, nr: int, args: tuple[int, ...] = ()) -> int:
    """Evaluate the filter for one struct seccomp_data, as the kernel would."""
    a6 = (list(args) + [0] * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *a6)
    insns = [struct.unpack("=HBBI", prog[i : i + 8]) for i in range(0, len(prog), 8)]
    acc = pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # ld [k]
            (acc,) = struct.unpack_from("<I", data, k)
            pc += 1
        elif code == 0x15:  # jeq #k
            pc += 1 + (jt if acc == k else jf)
        elif code == 0x45:  # jset #k
            pc += 1 + (jt if acc & k else jf)
        elif code == 0x06:  # ret #k
            return int(k)
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


@pytest.fixture(params=["x86_64", "aarch64"])
def arch(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_every_denied_syscall_gets_eperm(arch: str) -> None:
    prog = seccomp.build_filter(arch=arch)
    for name, nrs in seccomp.DENIED.items():
        assert run_bpf(prog, arch=AUDIT_ARCH[arch], nr=nrs[arch]) == EPERM, name


def test_other_syscalls_are_allowed(arch: str) -> None:
    prog = seccomp.build_filter(arch=arch)
    denied = {nrs[arch] for nrs in seccomp.DENIED.values()}
    denied |= {nrs[arch] for nrs in seccomp.ENOSYS_CALLS.values()}
    for nr in range(0, 470):
        if nr not in denied and nr != seccomp.IOCTL_NR[arch]:
            assert run_bpf(prog, arch=AUDIT_ARCH[arch], nr=nr) == seccomp.RET_ALLOW, nr


@pytest.mark.parametrize("cmd", [0x5412, 0x541C, 0x1_0000_5412, 0xFFFFFFFF_0000541C])
def test_terminal_injection_ioctls_get_eperm_on_the_low_word(arch: str, cmd: int) -> None:
    prog = seccomp.build_filter(arch=arch)
    assert run_bpf(prog, arch=AUDIT_ARCH[arch], nr=seccomp.IOCTL_NR[arch], args=(0, cmd)) == EPERM


@pytest.mark.parametrize("cmd", [0x5410, 0x540F, 0x5413, 0x5401, 0x5412_0000, 0x541D])
def test_other_ioctls_are_allowed(arch: str, cmd: int) -> None:
    """TIOCSPGRP, TIOCGPGRP, TIOCGWINSZ, TCGETS: job control and terminal size keep working."""
    prog = seccomp.build_filter(arch=arch)
    nr = seccomp.IOCTL_NR[arch]
    assert run_bpf(prog, arch=AUDIT_ARCH[arch], nr=nr, args=(0, cmd)) == seccomp.RET_ALLOW


@pytest.mark.parametrize(("native", "foreign"), [("x86_64", "i386"), ("aarch64", "arm")])
def test_foreign_arch_kills_the_process(native: str, foreign: str) -> None:
    prog = seccomp.build_filter(arch=native)
    for nr in (0, 20, 39, 54):
        assert run_bpf(prog, arch=AUDIT_ARCH[foreign], nr=nr) == seccomp.RET_KILL_PROCESS


def test_x32_syscalls_get_eperm() -> None:
    prog = seccomp.build_filter(arch="x86_64")
    for nr in (0, 39, 16, 512 + 2):
        assert run_bpf(prog, arch=AUDIT_ARCH["x86_64"], nr=0x40000000 | nr) == EPERM


def test_program_is_whole_sock_filters() -> None:
    prog = seccomp.build_filter()
    assert len(prog) % 8 == 0 and 0 < len(prog) // 8 < 4096


def test_unsupported_arch_is_refused() -> None:
    with pytest.raises(SandboxUnavailable, match="riscv64"):
        seccomp.build_filter(arch="riscv64")


HEADERS = {
    "x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "aarch64": Path("/usr/include/asm-generic/unistd.h"),
}


def test_numbers_match_the_kernel_headers(arch: str) -> None:
    header = HEADERS[arch]
    if not header.exists():
        pytest.skip(f"{header} not installed (linux-libc-dev)")
    defined = {
        m[1]: int(m[2])
        for m in re.finditer(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", header.read_text())
    }
    for name, nrs in seccomp.DENIED.items():
        assert defined[name] == nrs[arch], name
    assert defined["ioctl"] == seccomp.IOCTL_NR[arch]
    checked = {name: nrs for name, (nrs, _, _) in seccomp.MODE_CHECKED.items()}
    for name, nrs in {**checked, **seccomp.ENOSYS_CALLS}.items():
        if name in defined or arch in nrs:  # fchmodat2 is newer than some headers
            assert defined.get(name, nrs.get(arch)) == nrs.get(arch), name


MODES = {"setuid": 0o4755, "setgid": 0o2755, "both": 0o6755, "with a high word": 0x1_0000_4755}


def _mode_call(name: str, arch: str, mode: int, flags: int = 0o100) -> int:
    nrs, mode_arg, flags_arg = seccomp.MODE_CHECKED[name]
    args = [3, 0x7FFF_0000, 0, 0, 0, 0]
    args[mode_arg] = mode
    if flags_arg is not None:
        args[flags_arg] = flags
    return run_bpf(seccomp.build_filter(arch=arch), arch=AUDIT_ARCH[arch], nr=nrs[arch],
                   args=tuple(args))


@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
def test_set_uid_and_set_gid_bits_get_eperm_where_they_are_made(arch: str, mode: int) -> None:
    """The promise "nothing the agent writes carries set-uid or set-gid bits", in the filter."""
    for name, (nrs, _, _) in seccomp.MODE_CHECKED.items():
        if arch in nrs:
            assert _mode_call(name, arch, mode) == EPERM, name
            assert _mode_call(name, arch, mode & ~0o6000) == seccomp.RET_ALLOW, name


@pytest.mark.parametrize("flags", [0o100, 0o20200000, 0o100 | 0o1000], ids=["creat", "tmpfile",
                                                                              "creat-trunc"])
def test_open_that_creates_with_set_uid_gets_eperm(arch: str, flags: int) -> None:
    for name in ("open", "openat"):
        if arch in seccomp.MODE_CHECKED[name][0]:
            assert _mode_call(name, arch, 0o4755, flags=flags) == EPERM, name


def test_open_without_create_ignores_the_mode_argument(arch: str) -> None:
    """Without O_CREAT/O_TMPFILE the mode argument is whatever was in the register."""
    for name in ("open", "openat"):
        if arch in seccomp.MODE_CHECKED[name][0]:
            assert _mode_call(name, arch, 0o6777, flags=0o2) == seccomp.RET_ALLOW, name


def test_openat2_gets_enosys_so_libc_falls_back_to_openat(arch: str) -> None:
    nr = seccomp.ENOSYS_CALLS["openat2"][arch]
    assert run_bpf(seccomp.build_filter(arch=arch), arch=AUDIT_ARCH[arch],
                   nr=nr) == seccomp.RET_ERRNO | errno.ENOSYS


@pytest.mark.parametrize("request_", [16, 0x4206, 0x4207, 0, 12])  # ATTACH SEIZE INTERRUPT ...
def test_ptrace_of_the_sandboxs_init_gets_eperm(arch: str, request_: int) -> None:
    prog = seccomp.build_filter(arch=arch)
    nr = seccomp.PTRACE_NR[arch]
    for pid in (1, 0x1_0000_0001):  # a pid_t: the kernel keeps the low 32 bits
        assert run_bpf(prog, arch=AUDIT_ARCH[arch], nr=nr, args=(request_, pid)) == EPERM
    for pid in (2, 1234, 0, 0x1_0000_0002):  # the agent's own children: gdb, strace
        assert run_bpf(prog, arch=AUDIT_ARCH[arch], nr=nr,
                       args=(request_, pid)) == seccomp.RET_ALLOW


def test_ptrace_number_matches_the_kernel_headers(arch: str) -> None:
    header = HEADERS[arch]
    if not header.exists():
        pytest.skip(f"{header} not installed (linux-libc-dev)")
    assert f"#define __NR_ptrace {seccomp.PTRACE_NR[arch]}\n" in header.read_text()
