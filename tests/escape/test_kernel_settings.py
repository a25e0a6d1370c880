"""The kernel's settings through the sandbox's /proc, through the real CLI, as root and as an
unprivileged user (docs/security.md, "The kernel's settings"). uid 0 inside a root-run
sandbox is the host's uid 0, and sysctl writes are allowed by that uid, not by capabilities:
a writable /proc/sys/kernel/core_pattern would be code execution as host root.

Nothing here writes to the kernel: each path is only opened for writing, and closed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Actor

PY = "/usr/bin/python3"

SETTINGS = ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/randomize_va_space",
            "/proc/sys/net/ipv4/ip_forward", "/proc/sysrq-trigger")
MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                "/proc/latency_stats")
MASKED_DIRS = ("/proc/acpi", "/proc/scsi")

# Open for writing and close at once: NEVER write a byte (that would change the host's kernel).
PROBE = r"""
import errno, json, os, sys
out = {"open": {}, "files": {}, "dirs": {}}
for p in SETTINGS:
    try:
        fd = os.open(p, os.O_WRONLY)
    except OSError as e:
        out["open"][p] = errno.errorcode[e.errno]
    else:
        os.close(fd)
        out["open"][p] = "WRITABLE"
for p in MASKED_FILES:
    try:
        with open(p, "rb") as f:
            out["files"][p] = len(f.read(4096))
    except OSError as e:
        out["files"][p] = errno.errorcode[e.errno]
for p in MASKED_DIRS:
    try:
        out["dirs"][p] = os.listdir(p)
    except OSError as e:
        out["dirs"][p] = errno.errorcode[e.errno]
# still readable, as programs read them (ps, glibc's sysconf, runtimes)
out["pid_max"] = open("/proc/sys/kernel/pid_max").read().strip()
out["uid"] = os.getuid()
print(json.dumps(out))
"""


def _probe(actor: Actor, repo: Path) -> dict[str, object]:
    code = (f"SETTINGS = {SETTINGS!r}\nMASKED_FILES = {MASKED_FILES!r}\n"
            f"MASKED_DIRS = {MASKED_DIRS!r}\n" + PROBE)
    p = actor.agent("run", "-s", "proc", "--no-capture", "--net", "host", "--", PY, "-c", code,
                    cwd=repo)
    assert p.returncode == 0, p.stderr
    out: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


def test_the_kernels_settings_are_read_only_inside(actor: Actor) -> None:
    out = _probe(actor, actor.make_repo())
    assert out["uid"] == actor.uid
    opened = out["open"]
    assert isinstance(opened, dict)
    for path, res in opened.items():
        # EROFS: the read-only mount; EACCES: not the owner; ENOENT: not in this kernel
        assert res in ("EROFS", "EACCES", "ENOENT"), (path, res)
    # the critical ones exist on every kernel; for root (the host's uid 0, whom the files'
    # modes let write) only the read-only mount says no; the unprivileged user is refused by
    # the modes first (EACCES), and by the mount (EROFS) were the modes ever to allow it
    for path in SETTINGS[:3]:
        assert opened[path] in (("EROFS",) if actor.is_root else ("EROFS", "EACCES")), \
            (path, opened[path])
    assert int(str(out["pid_max"])) > 0  # still readable


def test_kernel_memory_keys_and_timers_in_proc_are_masked(actor: Actor) -> None:
    out = _probe(actor, actor.make_repo())
    files, dirs = out["files"], out["dirs"]
    assert isinstance(files, dict) and isinstance(dirs, dict)
    for path, res in files.items():
        if Path(path).exists():  # the same kernel's procfs: what the host has, the sandbox has
            assert res == 0, (path, res)  # an empty file
        else:
            assert res == "ENOENT", (path, res)
    for path, res in dirs.items():
        if Path(path).exists():
            assert res == [], (path, res)
        else:
            assert res == "ENOENT", (path, res)
    assert any(Path(p).exists() for p in files), "nothing to check on this kernel"
