"""meta.json: a session's typed record (who made it, its last run, its last capture); one
reader, one writer."""

from __future__ import annotations

import json
import os

from git_agent.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


class RunRecord(Record):
    """One `git agent run` of the session: what ran, when, how it ended, its network mode."""

    __slots__ = ("command", "start", "end", "exit_status", "net")

    def __init__(self, command: list[str], start: float | None, end: float | None,
                 exit_status: int | None, net: str | None):
        self.command = command
        self.start = start
        self.end = end
        self.exit_status = exit_status
        self.net = net

    def as_dict(self) -> dict[str, Any]:
        """Its JSON form: only the fields it has (`list --json` shows it as is)."""
        out: dict[str, Any] = {}
        if self.command:
            out["command"] = self.command
        for k in ("start", "end", "exit_status", "net"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out

    @classmethod
    def parse(cls, raw: object) -> RunRecord | None:
        if not isinstance(raw, dict):
            return None
        cmd = raw.get("command")
        command = cmd if isinstance(cmd, list) and all(isinstance(c, str) for c in cmd) else []
        r = cls(command=command, start=_number(raw.get("start")), end=_number(raw.get("end")),
                exit_status=_int(raw.get("exit_status")), net=_str(raw.get("net")))
        return r if r.as_dict() else None


class Meta(Record):
    """The session's meta.json. A field a reader cannot trust (wrong type) reads as unset."""

    __slots__ = ("name", "worktree", "created", "last_run", "capture_base", "capture_tip",
                 "captured_at", "repo_id", "remote", "remote_running")

    def __init__(self, name: str | None = None, worktree: str | None = None,
                 created: float | None = None, last_run: RunRecord | None = None,
                 capture_base: str | None = None, capture_tip: str | None = None,
                 captured_at: float | None = None, repo_id: str | None = None,
                 remote: str | None = None, remote_running: bool | None = None):
        self.name = name
        self.worktree = worktree  # the worktree's root, as it was when the session was made
        self.created = created
        self.last_run = last_run
        self.capture_base = capture_base  # the base and tip of the last capture commit
        self.capture_tip = capture_tip
        self.captured_at = captured_at
        self.repo_id = repo_id  # the repository's id when the session was made (identity.py)
        self.remote = remote  # the remote its last run ran on (run --on NAME); None: here
        # its run there goes on without us (--detach, a lost connection) as far as we know
        self.remote_running = remote_running

    def replace(self, **changes: Any) -> Meta:
        """A copy with some fields changed (records are not changed in place)."""
        fields = {k: getattr(self, k) for k in self._fields()}
        unknown = set(changes) - set(fields)
        assert not unknown, unknown
        fields.update(changes)
        return Meta(**fields)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in self._fields():
            v = getattr(self, k)
            if isinstance(v, RunRecord):
                v = v.as_dict()
            if v is not None:
                out[k] = v
        return out

    @classmethod
    def parse(cls, raw: object) -> Meta:
        if not isinstance(raw, dict):
            return cls()
        return cls(name=_str(raw.get("name")), worktree=_str(raw.get("worktree")),
                   created=_number(raw.get("created")),
                   last_run=RunRecord.parse(raw.get("last_run")),
                   capture_base=_str(raw.get("capture_base")),
                   capture_tip=_str(raw.get("capture_tip")),
                   captured_at=_number(raw.get("captured_at")),
                   repo_id=_str(raw.get("repo_id")), remote=_str(raw.get("remote")),
                   remote_running=raw.get("remote_running") is True or None)


def read(path: Path) -> Meta:
    """The one reader: a missing or unreadable meta.json reads as an empty Meta."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return Meta()
    return Meta.parse(data)


def write(path: Path, meta: Meta) -> None:
    """The one writer: atomically (a reader sees the old file or the new one)."""
    tmp = path.with_name(f".meta.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta.as_dict(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _number(v: object) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _str(v: object) -> str | None:
    return v if isinstance(v, str) else None
