"""Landlock scoping for bwrap: no abstract unix sockets or signals out of the sandbox."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

from git_agent.errors import SandboxUnavailable

# Syscall numbers; the same on x86_64 and aarch64 (asm-generic numbering for new syscalls).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_RESTRICT_SELF = 446
_SYS_PRCTL = {"x86_64": 157, "aarch64": 167}

_LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
LANDLOCK_SCOPE_SIGNAL = 1 << 1
_PR_SET_NO_NEW_PRIVS = 38

SCOPE_MIN_ABI = 6  # Linux 6.12


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """Return the kernel's Landlock ABI version, or 0 when Landlock is missing or disabled."""
    libc = _libc()
    ret = libc.syscall(
        ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET),
        ctypes.c_void_p(None),
        ctypes.c_size_t(0),
        ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(int(ret), 0)


def prepare_scope_restriction() -> Callable[[], None]:
    """Return a preexec_fn that sets no_new_privs and scopes the process with Landlock.

    The returned function restricts only IPC leaving the process's new Landlock domain:
    connecting to abstract unix sockets created outside it and sending signals to processes
    outside it. It handles no filesystem or network access, so mounts (bwrap's setup) still
    work. Everything is allocated here; in the child the function only makes three syscalls,
    and raises OSError (Popen reports "Exception occurred in preexec_fn") if one fails.
    """
    abi = abi_version()
    if abi < SCOPE_MIN_ABI:
        found = f"ABI {abi}" if abi else "no Landlock"
        raise SandboxUnavailable(
            f"Landlock scoping needs Landlock ABI {SCOPE_MIN_ABI} (Linux 6.12 or later) but this "
            f"kernel has {found}; upgrade the kernel, enable Landlock (boot with "
            "lsm=landlock,... if CONFIG_SECURITY_LANDLOCK=y), or use --net none / isolated"
        )
    machine = os.uname().machine
    if machine not in _SYS_PRCTL:
        raise SandboxUnavailable(
            f"Landlock scoping is only wired up for x86_64 and aarch64, not {machine}"
        )
    libc = _libc()
    syscall = libc.syscall
    attr = _RulesetAttr(0, 0, LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL)
    # Prebuilt argument objects: the child does no allocation of its own beyond the calls.
    nr_prctl = ctypes.c_long(_SYS_PRCTL[machine])
    nr_create = ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET)
    nr_restrict = ctypes.c_long(_SYS_LANDLOCK_RESTRICT_SELF)
    nnp = ctypes.c_long(_PR_SET_NO_NEW_PRIVS)
    one = ctypes.c_long(1)
    zero = ctypes.c_long(0)
    attr_ref = ctypes.byref(attr)
    attr_size = ctypes.c_size_t(ctypes.sizeof(attr))
    no_flags = ctypes.c_uint32(0)
    get_errno = ctypes.get_errno
    close = os.close
    oserror = OSError
    strerror = os.strerror

    def restrict() -> None:
        if syscall(nr_prctl, nnp, one, zero, zero, zero) != 0:
            err = get_errno()
            raise oserror(err, strerror(err))
        fd = syscall(nr_create, attr_ref, attr_size, no_flags)
        if fd < 0:
            err = get_errno()
            raise oserror(err, strerror(err))
        ret = syscall(nr_restrict, ctypes.c_int(fd), no_flags)
        err = get_errno()
        close(fd)
        if ret != 0:
            raise oserror(err, strerror(err))

    return restrict
