"""The seccomp filter for bwrap --seccomp: deny syscalls that escape or outlive the sandbox."""

from __future__ import annotations

import errno
import os
import struct
import sys

from git_agent.errors import SandboxUnavailable

# Denied syscalls (each returns EPERM) and their numbers per architecture; the numbers come from
# asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64). Why each one is denied:
DENIED: dict[str, dict[str, int]] = {
    # Kernel keyrings are not namespaced: the host user's session/user keyrings (Kerberos
    # tickets, ecryptfs and fscrypt keys) would be readable from inside. Needs: keyctl(1),
    # krb5 KEYRING: ccaches, which then fall back to a FILE: ccache.
    "keyctl": {"x86_64": 250, "aarch64": 219},
    "add_key": {"x86_64": 248, "aarch64": 217},
    "request_key": {"x86_64": 249, "aarch64": 218},
    # io_uring performs syscall work the filter never sees, and is a rich kernel attack surface.
    # Needs: liburing programs; libuv/Node and tokio fall back to epoll/threads on EPERM.
    "io_uring_setup": {"x86_64": 425, "aarch64": 425},
    "io_uring_enter": {"x86_64": 426, "aarch64": 426},
    "io_uring_register": {"x86_64": 427, "aarch64": 427},
    # Lets a process stall the kernel mid-copy: the usual tool for winning kernel races.
    # Needs: CRIU, QEMU post-copy migration.
    "userfaultfd": {"x86_64": 323, "aarch64": 282},
    # Takes a copy of another process's file descriptor: pid 1's (bwrap's status pipe) would let
    # the agent write its own exit status. Needs: debuggers of fd passing, rare.
    "pidfd_getfd": {"x86_64": 438, "aarch64": 438},
    # Hardware counters leak side channels and have had many kernel bugs. Needs: perf(1).
    "perf_event_open": {"x86_64": 298, "aarch64": 241},
    # Loading kernels and modules, time, accounting, swap and reboot change the host itself; they
    # need capabilities in the initial namespace, so these are defence in depth.
    "kexec_load": {"x86_64": 246, "aarch64": 104},
    "kexec_file_load": {"x86_64": 320, "aarch64": 294},
    "init_module": {"x86_64": 175, "aarch64": 105},
    "finit_module": {"x86_64": 313, "aarch64": 273},
    "delete_module": {"x86_64": 176, "aarch64": 106},
    "clock_settime": {"x86_64": 227, "aarch64": 112},
    "clock_adjtime": {"x86_64": 305, "aarch64": 266},
    "settimeofday": {"x86_64": 164, "aarch64": 170},
    "adjtimex": {"x86_64": 159, "aarch64": 171},  # read-only use by ntptime/chronyc too
    "acct": {"x86_64": 163, "aarch64": 89},
    "swapon": {"x86_64": 167, "aarch64": 224},
    "swapoff": {"x86_64": 168, "aarch64": 225},
    "reboot": {"x86_64": 169, "aarch64": 142},
    # Opens any inode by handle, bypassing the mount tree: the "shocker" container escape; newer
    # kernels relax its CAP_DAC_READ_SEARCH check for mounts owned by a user namespace.
    # name_to_handle_at stays allowed: it only names a path the caller can already see, and
    # systemd and util-linux use it to read mount ids.
    "open_by_handle_at": {"x86_64": 304, "aarch64": 265},
}

IOCTL_NR = {"x86_64": 16, "aarch64": 29}
# Terminal injection: push input into the controlling terminal (CVE-2017-5226) or, on a
# virtual console, paste the selection. Compared on the low 32 bits only: the kernel truncates
# cmd to unsigned int, so 0x1_0000_5412 is TIOCSTI too (flatpak CVE-2019-10063).
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

# Set-user-ID and set-group-ID bits, refused where they are made (systemd's RestrictSUIDSGID):
# the agent's files land on the host (the agent home, the session's upper dir), where a set-uid
# file would run with its owner's rights for anyone who reaches it. A mode holding S_ISUID or
# S_ISGID gets EPERM from chmod and friends, and from the calls that create a file with a mode
# (open/openat only with O_CREAT or O_TMPFILE: else their mode argument is not a mode). Each:
# numbers per architecture (aarch64 has only the *at forms), the index of the mode argument and
# of the flags argument (None: always a mode). Their numbers come from the same headers.
S_ISUID = 0o4000
S_ISGID = 0o2000
O_CREAT = 0o100  # the same on x86_64 and aarch64
O_TMPFILE = 0o20000000  # __O_TMPFILE; O_TMPFILE is it with O_DIRECTORY
MODE_CHECKED: dict[str, tuple[dict[str, int], int, int | None]] = {
    "chmod": ({"x86_64": 90}, 1, None),
    "fchmod": ({"x86_64": 91, "aarch64": 52}, 1, None),
    "fchmodat": ({"x86_64": 268, "aarch64": 53}, 2, None),
    "fchmodat2": ({"x86_64": 452, "aarch64": 452}, 2, None),
    "mkdir": ({"x86_64": 83}, 1, None),
    "mkdirat": ({"x86_64": 258, "aarch64": 34}, 2, None),
    "mknod": ({"x86_64": 133}, 1, None),
    "mknodat": ({"x86_64": 259, "aarch64": 33}, 2, None),
    "creat": ({"x86_64": 85}, 1, None),
    "open": ({"x86_64": 2}, 2, 1),
    "openat": ({"x86_64": 257, "aarch64": 56}, 3, 2),
}
# ptrace of pid 1 (bwrap, the sandbox's init): PTRACE_ATTACH stops it, and an agent that
# exits holding it leaves it stopped, so git agent waits for ever and nothing is captured.
# Every request naming pid 1 gets EPERM (pid is a pid_t: the low 32 bits are compared, as the
# kernel truncates it); tracing any other process (gdb, strace on the agent's own children)
# stays allowed.
PTRACE_NR = {"x86_64": 101, "aarch64": 117}
# process_vm_writev writes another process's memory as /proc/PID/mem does (masked for pid 1
# by sandbox/system.py): pid 1 (its first argument) gets EPERM, other pids stay allowed.
VM_WRITEV_NR = {"x86_64": 311, "aarch64": 271}
INIT_PID = 1
# openat2 takes its flags and mode in a struct the filter cannot read: ENOSYS, on which libc
# and language runtimes fall back to openat (which the filter checks).
ENOSYS_CALLS: dict[str, dict[str, int]] = {"openat2": {"x86_64": 437, "aarch64": 437}}

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000

# Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JSET_K = 0x45
_RET_K = 0x06
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

# Offsets into struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6];}, little endian.
_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG1_LOW = 16 + 8


def _arg_low(index: int) -> int:
    """Offset of the low 32 bits of argument `index` (the kernel reads modes and open flags
    as 32-bit values, so the high half says nothing)."""
    return 16 + 8 * index


def native_arch() -> str:
    machine = os.uname().machine  # platform.machine(), without importing platform (~1.5 ms)
    if machine == "arm64":
        machine = "aarch64"
    return machine


def build_filter(*, arch: str | None = None) -> bytes:
    """Return the program as packed struct sock_filter entries, ready for bwrap --seccomp FD."""
    arch = arch or native_arch()
    if arch not in _AUDIT_ARCH or sys.byteorder != "little":
        raise SandboxUnavailable(
            f"no seccomp filter for the {arch} architecture (only x86_64 and aarch64); "
            "git agent cannot block terminal injection there and refuses to start"
        )
    eperm = RET_ERRNO | errno.EPERM
    # (opcode, jump-if-true label, jump-if-false label, k); a label of None means "next".
    prog: list[tuple[int, str | None, str | None, int] | str] = [
        (_LD_W_ABS, None, None, _OFF_ARCH),
        (_JEQ_K, None, "kill", _AUDIT_ARCH[arch]),
        (_LD_W_ABS, None, None, _OFF_NR),
    ]
    if arch == "x86_64":
        prog.append((_JSET_K, "eperm", None, _X32_SYSCALL_BIT))
    prog.append((_JEQ_K, "ioctl", None, IOCTL_NR[arch]))
    prog.append((_JEQ_K, "ptrace", None, PTRACE_NR[arch]))
    prog.append((_JEQ_K, "vm_writev", None, VM_WRITEV_NR[arch]))
    for numbers in DENIED.values():
        prog.append((_JEQ_K, "eperm", None, numbers[arch]))
    for numbers in ENOSYS_CALLS.values():
        prog.append((_JEQ_K, "enosys", None, numbers[arch]))
    checks: set[tuple[int, int | None]] = set()
    for numbers, mode_arg, flags_arg in MODE_CHECKED.values():
        if arch in numbers:
            prog.append((_JEQ_K, _mode_label(mode_arg, flags_arg), None, numbers[arch]))
            checks.add((mode_arg, flags_arg))
    prog += [
        (_RET_K, None, None, RET_ALLOW),
        "ioctl",
        (_LD_W_ABS, None, None, _OFF_ARG1_LOW),
        (_JEQ_K, "eperm", None, TIOCSTI),
        (_JEQ_K, "eperm", None, TIOCLINUX),
        (_RET_K, None, None, RET_ALLOW),
        "ptrace",
        (_LD_W_ABS, None, None, _arg_low(1)),
        (_JEQ_K, "eperm", "allow", INIT_PID),
        "vm_writev",
        (_LD_W_ABS, None, None, _arg_low(0)),
        (_JEQ_K, "eperm", "allow", INIT_PID),
    ]
    for mode_arg, flags_arg in sorted(checks, key=lambda c: (c[0], c[1] or -1)):
        prog.append(_mode_label(mode_arg, flags_arg))
        if flags_arg is not None:  # no O_CREAT, no O_TMPFILE: the mode is not one
            prog += [(_LD_W_ABS, None, None, _arg_low(flags_arg)),
                     (_JSET_K, None, "allow", O_CREAT | O_TMPFILE)]
        prog += [(_LD_W_ABS, None, None, _arg_low(mode_arg)),
                 (_JSET_K, "eperm", "allow", S_ISUID | S_ISGID)]
    prog += [
        "allow",
        (_RET_K, None, None, RET_ALLOW),
        "eperm",
        (_RET_K, None, None, eperm),
        "enosys",
        (_RET_K, None, None, RET_ERRNO | errno.ENOSYS),
        "kill",
        (_RET_K, None, None, RET_KILL_PROCESS),
    ]
    return _assemble(prog)


def _mode_label(mode_arg: int, flags_arg: int | None) -> str:
    return f"mode{mode_arg}" if flags_arg is None else f"flags{flags_arg}-mode{mode_arg}"


def _assemble(prog: list[tuple[int, str | None, str | None, int] | str]) -> bytes:
    labels: dict[str, int] = {}
    insns: list[tuple[int, str | None, str | None, int]] = []
    for item in prog:
        if isinstance(item, str):
            labels[item] = len(insns)
        else:
            insns.append(item)

    def offset(pc: int, label: str | None) -> int:
        if label is None:
            return 0
        off = labels[label] - pc - 1
        assert 0 <= off <= 255, "BPF conditional jump out of range"
        return off

    return b"".join(
        struct.pack("=HBBI", code, offset(pc, jt), offset(pc, jf), k)
        for pc, (code, jt, jf, k) in enumerate(insns)
    )
