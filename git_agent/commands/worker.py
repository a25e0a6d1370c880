"""`git-agent worker` (hidden): what `remote` starts on the remote over ssh; one JSON request on
stdin, one JSON answer on stdout (remote/worker.py). The ops are given by the command line."""

from __future__ import annotations

from git_agent.remote import worker


def main(ops: dict[str, worker.Op]) -> int:
    return worker.serve(ops)
