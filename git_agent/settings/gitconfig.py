"""The git-config reader: every agent.* entry with its scope and origin, in one git call."""

from __future__ import annotations

from pathlib import Path

from git_agent import proc
from git_agent.errors import UsageError
from git_agent.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable


def canonical(key: str) -> str:
    """A key as git reports it: section and variable lower-cased, a subsection kept as is."""
    section, dot, rest = key.partition(".")
    if not dot:
        return key.lower()
    sub, dot2, var = rest.rpartition(".")
    if not dot2:
        return f"{section.lower()}.{rest.lower()}"
    return f"{section.lower()}.{sub}.{var.lower()}"


def _canonical_prefix(prefix: str) -> str:
    section, dot, rest = prefix.partition(".")
    return f"{section.lower()}{dot}{rest}" if dot else prefix.lower()


class Entry(Record):
    __slots__ = ("key", "value", "scope", "origin")

    def __init__(self, key: str, value: str | None, scope: str, origin: str):
        self.key = key  # lower-cased by git
        self.value = value
        self.scope = scope  # system, global, local, worktree, command
        self.origin = origin


class GitConfig(Record):
    """All agent.* entries in git's precedence order (later wins)."""

    __slots__ = ("entries",)

    def __init__(self, entries: list[Entry] | None = None):
        self.entries: list[Entry] = entries if entries is not None else []

    def get(self, key: str) -> Entry | None:
        key = canonical(key)
        for e in reversed(self.entries):
            if e.key == key:
                return e
        return None

    def get_str(self, key: str, default: str | None = None) -> str | None:
        e = self.get(key)
        return default if e is None or e.value is None else e.value

    def get_all(self, key: str) -> list[str]:
        key = canonical(key)
        return [e.value for e in self.entries if e.key == key and e.value is not None]

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def with_prefix(self, prefix: str) -> list[Entry]:
        prefix = _canonical_prefix(prefix)
        return [e for e in self.entries if e.key.startswith(prefix)]


_READ = ("git", "config", "-z", "--show-origin", "--show-scope", "--get-regexp", r"^agent\.")


def start_read(cwd: Path | None = None) -> Callable[[], subprocess.CompletedProcess[bytes]]:
    """Start reading git config now (launch: beside `git rev-parse`); read() takes it."""
    return proc.start(_READ, cwd=cwd)


def read(
    cwd: Path | None = None,
    *,
    started: Callable[[], subprocess.CompletedProcess[bytes]] | None = None,
) -> GitConfig:
    """Read every agent.* key with its scope and origin, in one git call."""
    p = (started or start_read(cwd))()
    if p.returncode not in (0, 1):
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"cannot read git config: {err[-1] if err else 'git config failed'}")
    fields = p.stdout.split(b"\0")
    entries: list[Entry] = []
    for i in range(0, len(fields) - 2, 3):
        scope, origin, kv = (f.decode(errors="surrogateescape") for f in fields[i : i + 3])
        key, sep, value = kv.partition("\n")
        entries.append(Entry(key=key, value=value if sep else None, scope=scope, origin=origin))
    return GitConfig(entries)


def parse_bool(value: str | None) -> bool:
    if value is None:
        return True
    v = value.strip().lower()
    if v in ("true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0", ""):
        return False
    raise UsageError(f"not a boolean: {value!r}")
