"""Doctor's verdict on the remote, remembered: prepare asks before every run whether this machine
can sandbox an agent; a pass is kept (data_root()/doctor.json, 0600) under a key of what the
checks depend on, so a warm run does not probe again (docs/remote.md, "Speed").

A FAIL is never remembered (a fixed machine passes at once). A pass that went stale cannot run
anything unsandboxed: the run itself is `git agent run`, which refuses when it cannot set up the
sandbox; the early verdict only spares a doomed run its transfer."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from git_agent import __version__
from git_agent.remote import host
from git_agent.sandbox import bwrap
from git_agent.settings import gitconfig

TTL = 3600  # seconds: a pass older than this is probed again whatever the key says
# what the kernel lets an unprivileged user do (read, never written): a change probes again
KERNEL_FILES = (
    "/proc/sys/kernel/random/boot_id",
    "/proc/sys/kernel/unprivileged_userns_clone",
    "/proc/sys/user/max_user_namespaces",
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    "/proc/sys/kernel/seccomp/actions_avail",
    "/sys/kernel/security/lsm",
)


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(4096).decode(errors="replace")
    except OSError:
        return None


def _stamp(path: Path | None) -> list[int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def key() -> str:
    """A digest of what doctor's checks depend on: this git agent and interpreter, the user,
    the kernel and its user-namespace knobs, the config (every agent.* key), and the bwrap
    that would be chosen (each candidate's path and stat: an upgraded binary probes again)."""
    cfg = gitconfig.read(Path.cwd())
    uname = os.uname()
    parts = {
        "git-agent": [__version__, sys.executable, str(Path(host.__file__).parent)],
        "user": [os.geteuid(), os.getegid(), os.environ.get("HOME")],
        "kernel": [uname.release, uname.version, uname.machine],
        "files": {f: _read(f) for f in KERNEL_FILES},
        "config": [[e.key, e.value] for e in cfg.entries],
        "env": {k: v for k, v in os.environ.items()
                if k in ("PATH", "GIT_AGENT_BWRAP") or k.startswith(("XDG_", "GIT_CONFIG"))},
        "bwrap": [[source, str(path), _stamp(path)]
                  for source, path in bwrap.candidates(cfg.get_str("agent.bwrap"))],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def remembered(sound: Callable[[], bool], *, now: Callable[[], float] = time.time) -> bool:
    """sound()'s verdict, or a remembered pass under the same key (younger than TTL)."""
    path = host.data_root() / "doctor.json"
    k = key()
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        known = json.loads(path.read_text())
        if known.get("key") == k and known.get("ok") is True and \
                0 <= now() - float(known.get("at")) < TTL:
            return True
    ok = sound()
    if ok:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(f".doctor.json.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"key": k, "ok": True, "at": now()}, f)
            os.replace(tmp, path)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
    return ok
