"""What of the host system a sandbox shows: /usr, /etc... read-only, private /tmp and /run,
the kernel's settings in /proc read-only, /etc's secrets masked (and, for a root-run sandbox,
every /etc entry others may not read)."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from pathlib import Path

from git_agent import proc
from git_agent.repo import within
from git_agent.sandbox.mounts import Bind, Dev, Mount, Proc, RemountRo, Symlink, Tmpfs

SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/nix")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
PRIVATE_TMPFS = ("/tmp", "/var/tmp", "/run")
# Readable by root, so a root-run sandbox would see them through the read-only /etc.
ETC_SECRETS = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/security/opasswd",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_dsa_key",
)
# The kernel's settings in /proc, read-only inside (Docker's readonly paths). uid 0 inside a
# root-run sandbox is the host's uid 0, and a sysctl write is allowed by uid, not by
# capabilities: a writable kernel.core_pattern runs a program as host root. bwrap's own cover
# skips /proc/sys (access(W_OK) on the 0555 dir says EACCES), so the plan binds these over
# the new procfs: the host's, read-only (sysctls answer for the reader's own namespaces).
PROC_READONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq")
# Masked (Docker's masked paths): kernel memory, the keys of the caller's keyrings, timers and
# scheduler state of the whole host, firmware and SCSI control files.
PROC_MASKED = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
               "/proc/latency_stats", "/proc/acpi", "/proc/scsi",
               # physical memory and kernel allocator state (root-readable): side channels
               "/proc/kpageflags", "/proc/kpagecount", "/proc/kpagecgroup", "/proc/slabinfo",
               "/proc/pagetypeinfo", "/proc/vmallocinfo",
               # the memory of pid 1, the sandbox's init (bwrap): written, it could be made to
               # spin for ever, and git agent would wait for it (process_vm_writev: seccomp)
               "/proc/1/mem", "/proc/1/task/1/mem")


def system_mounts(empty_file: Path | None) -> list[Mount]:
    ms: list[Mount] = []
    for d in (*SYSTEM_DIRS, *SYSTEM_LINKS):  # as the host has them: a dir, or a link
        p = Path(d)
        if p.is_symlink():
            ms.append(Symlink(os.readlink(p), p))
        elif p.is_dir():
            ms.append(Bind(p, p))
    ms += proc_mounts(empty_file)
    ms.append(Dev())
    ms += [Tmpfs(Path(d)) for d in PRIVATE_TMPFS]
    resolv = Path("/etc/resolv.conf")
    if resolv.is_symlink():
        target = resolv.resolve()
        if not within(target, Path("/etc")) and target.exists():
            ms.append(Bind(target, target, try_=True))
    if empty_file is not None:
        for secret in ETC_SECRETS:
            if os.path.lexists(secret) and not os.path.islink(secret):
                ms.append(Bind(empty_file, Path(secret)))
        if os.geteuid() == 0:
            ms += root_only_etc(empty_file)
    return ms


def proc_mounts(empty_file: Path | None) -> list[Mount]:
    """The sandbox's own procfs, its kernel settings read-only and its host-wide state masked
    (each where this kernel has it: the same kernel's procfs has the same entries)."""
    ms: list[Mount] = [Proc()]
    for p in PROC_READONLY:
        if os.path.lexists(p):
            ms.append(Bind(Path(p), Path(p)))
        elif p == "/proc/sys":  # the host's /proc hides it (subset=pid): the new one has it
            ms += [Tmpfs(Path(p), mode=0o555), RemountRo(Path(p))]  # so it is empty inside
    for p in PROC_MASKED:
        if os.path.isdir(p):
            ms += [Tmpfs(Path(p), mode=0o555), RemountRo(Path(p))]
        elif os.path.lexists(p) and empty_file is not None:  # None: plans of unit tests
            ms.append(Bind(empty_file, Path(p)))
    return ms


# `find` lists what only root may read in /etc in a process of its own, on the other core, while
# launch does its imports and git calls (a Python walk of ~1,400 entries costs ~10 ms of launch)
_FIND_PRIVATE = (
    "find", "/etc", "-xdev",
    "(", "-type", "d", "(", "!", "-perm", "-o=r", "-o", "!", "-perm", "-o=x", ")",
    "-printf", r"d%p\0", "-prune", ")",
    "-o", "(", "-type", "f", "!", "-perm", "-o=r", "!", "-name", "*.lock", "-printf", r"f%p\0", ")",
)
_etc_find: subprocess.Popen[bytes] | None = None
# A lock file (useradd's /etc/shadow.lock: a pid, no secret) is not masked: it lives for a
# moment, and a mask of a file gone by the launch stops bwrap ("Can't create file at ...").
LOCK = ".lock"


def start_root_etc_scan() -> None:
    """Start listing /etc's root-only entries early (root runs only); root_only_etc reads it."""
    global _etc_find
    find = proc.which("find")  # not a relative PATH entry: this runs as root
    if _etc_find is None and find:
        with contextlib.suppress(OSError):  # no find: root_only_etc walks /etc itself
            _etc_find = subprocess.Popen([find, *_FIND_PRIVATE[1:]], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def root_only_etc(empty_file: Path) -> list[Mount]:
    """The masks for /etc entries others may not read, from find when it ran, else walked."""
    global _etc_find
    found, _etc_find = _etc_find, None
    if found is None:
        return _root_only_etc(empty_file)
    out, _ = found.communicate()
    if found.returncode != 0:
        return _root_only_etc(empty_file)
    ms: list[Mount] = []
    for item in out.split(b"\0"):
        if len(item) < 2:
            continue
        path = Path(os.fsdecode(item[1:]))
        if str(path) in ETC_SECRETS:
            continue
        if item[:1] == b"d":
            ms += [Tmpfs(path, mode=0o700), RemountRo(path)]
        else:
            ms.append(Bind(empty_file, path))
    return ms


def _root_only_etc(empty_file: Path, etc: Path = Path("/etc")) -> list[Mount]:
    """For a root-run sandbox (uid 0 inside too): /etc entries others may not read (TLS and
    VPN keys, keytabs, NetworkManager secrets...) are masked, found by their mode."""
    ms: list[Mount] = []
    stack = [etc]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode) or e.path in ETC_SECRETS:
                continue
            private = not st.st_mode & stat.S_IROTH
            if stat.S_ISDIR(st.st_mode):
                if private or not st.st_mode & stat.S_IXOTH:
                    ms += [Tmpfs(Path(e.path), mode=0o700), RemountRo(Path(e.path))]
                else:
                    stack.append(Path(e.path))
            elif stat.S_ISREG(st.st_mode) and private and not e.name.endswith(LOCK):
                ms.append(Bind(empty_file, Path(e.path)))
    return ms
