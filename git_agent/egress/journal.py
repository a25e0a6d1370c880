"""The egress record: one JSON line per connection (allowed or denied) in the session, and
the summaries `run` prints and `review` shows."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from git_agent import ui

FILE = "net.jsonl"


class Journal:
    """Appends decisions to path; says each denied host once through say()."""

    def __init__(self, path: Path, say: Callable[[str], None] | None = None):
        self.path = path
        self.say = say if say is not None else _stderr
        self._lock = threading.Lock()
        self._told: set[str] = set()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def add(self, *, host: str, port: int, allowed: bool, reason: str = "", via: str = "",
            address: str = "", sent: int = 0, received: int = 0, started: float | None = None,
            hint: str = "") -> None:
        entry = {
            "time": round(started if started is not None else time.time(), 3),
            "host": host, "port": port, "verdict": "allowed" if allowed else "denied",
            "via": via, "address": address, "sent": sent, "received": received,
        }
        if reason:
            entry["reason"] = reason
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        with self._lock:
            with contextlib.suppress(OSError):
                os.write(self._fd, line)
            tell = not allowed and host not in self._told
            if tell:
                self._told.add(host)
        if tell:  # the name is the agent's: quoted as git quotes paths (no terminal control)
            shown = ui.quote_path(host)
            self.say(f"denied {shown}:{port} ({reason})"
                     + (f"; {hint}" if hint and shown == host else ""))

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _stderr(msg: str) -> None:
    try:
        sys.stderr.write(f"\r\ngit agent: network: {msg}\r\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def read(path: Path) -> list[dict[str, object]]:
    """The entries of a record file, oldest first (a torn last line is skipped)."""
    out: list[dict[str, object]] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict):
            out.append(e)
    return out


def summary(entries: list[dict[str, object]]) -> str | None:
    """One line: "reached 3 hosts; denied 2: evil.example x4, 10.0.0.1 x1" (None: no entries)."""
    if not entries:
        return None
    reached: set[str] = set()
    denied: dict[str, int] = {}
    for e in entries:
        host = ui.quote_path(str(e.get("host")))
        if e.get("verdict") == "allowed":
            reached.add(host)
        else:
            denied[host] = denied.get(host, 0) + 1
    parts = [f"reached {len(reached)} host{'s' if len(reached) != 1 else ''}"]
    if denied:
        top = sorted(denied.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{h} \u00d7{n}" for h, n in top[:5])
        more = f", {len(top) - 5} more" if len(top) > 5 else ""
        parts.append(f"denied {len(denied)}: {shown}{more}")
    else:
        parts.append("denied none")
    return "network: " + "; ".join(parts)


def listing(entries: list[dict[str, object]]) -> list[str]:
    """`review --net`: one line per connection, in the order they started."""
    lines = []
    for e in sorted(entries, key=lambda e: float(str(e.get("time", 0)))):
        t = time.strftime("%H:%M:%S", time.localtime(float(str(e.get("time", 0)))))
        verdict = str(e.get("verdict"))
        where = f"{ui.quote_path(str(e.get('host')))}:{e.get('port')}"
        if verdict == "allowed":
            detail = f"sent {e.get('sent', 0)} B, received {e.get('received', 0)} B"
        else:
            detail = ui.quote_path(str(e.get("reason", "")))
        lines.append(f"{t}  {verdict:<7}  {where}  {detail}")
    return lines
