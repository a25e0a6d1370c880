"""`git-agent worker` (hidden): what `remote` and `run --on` start on the remote over ssh; one
JSON request on stdin, one JSON answer on stdout (remote/worker.py), the ops prepare and fetch
streaming a bundle first (remote/host.py); `--ticket T` runs a prepared session."""

from __future__ import annotations

from collections.abc import Callable

from git_agent.remote import host, worker


def main(ops: dict[str, worker.Op], *, sound: Callable[[], bool]) -> int:
    streams: dict[str, worker.StreamOp] = {
        "prepare": lambda req, chan: host.prepare(req, chan, sound=sound),
        "fetch": host.fetch,
    }
    return worker.serve({**ops, "attach": host.attach_ticket}, streams)


def run_ticket(ticket: str) -> int:
    return host.run_ticket(ticket)
