"""`git-agent worker` (hidden): what `remote` and `run --on` start on the remote over ssh; one
JSON request on stdin, one JSON answer on stdout (remote/worker.py), the ops prepare and fetch
streaming a bundle first (remote/host.py), drop removing a session's copy (remote/forget.py);
`--ticket T` runs a prepared session."""

from __future__ import annotations

from collections.abc import Callable

from git_agent.remote import host, worker


def main(ops: dict[str, worker.Op], *, sound: Callable[[], bool]) -> int:
    def remembered() -> bool:
        from git_agent.remote import soundness

        return soundness.remembered(sound)

    def drop(req: dict[str, object]) -> dict[str, object]:
        from git_agent.remote import forget  # pygit2 (rewrite): only when dropping

        return forget.drop(req)

    streams: dict[str, worker.StreamOp] = {
        "prepare": lambda req, chan: host.prepare(req, chan, sound=remembered),
        "fetch": host.fetch,
    }
    return worker.serve({**ops, "attach": host.attach_ticket, "drop": drop}, streams)


def run_ticket(ticket: str) -> int:
    """`worker --ticket T`: the prepared run started under its holder and joined, or an
    attach ticket's run joined (host.run_ticket)."""
    return host.run_ticket(ticket)
