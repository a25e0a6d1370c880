"""The hidden `git-agent worker` without click (it starts up to three times per `run --on`, so
its launch time counts): the ops it serves on stdin/stdout, and a ticketed run, which joins
the run its holder started (remote/detached.py)."""

from __future__ import annotations

import os


def main(args: list[str]) -> int | None:
    """`worker` or `worker --ticket T`; None for anything else (click parses and says why)."""
    debug = bool(os.environ.get("GIT_AGENT_DEBUG"))
    if not args:
        return serve()
    if len(args) == 2 and args[0] == "--ticket":
        return run_ticket(args[1], debug=debug)
    if len(args) == 1 and args[0].startswith("--ticket="):
        return run_ticket(args[0].partition("=")[2], debug=debug)
    return None


def serve() -> int:
    from git_agent.commands import worker

    def doctor_op(_req: dict[str, object]) -> dict[str, object]:
        from git_agent.commands import doctor

        checks = doctor.checks()
        return {"ok": all(c.status != "FAIL" for c in checks),
                "checks": [{"name": c.name, "status": c.status, "detail": c.detail,
                            "fix": c.fix} for c in checks]}

    def sound() -> bool:
        from git_agent.commands import doctor

        return all(c.status != "FAIL" for c in doctor.checks())

    return worker.main({"doctor": doctor_op}, sound=sound)


def run_ticket(ticket: str, *, debug: bool) -> int:
    """The prepared run: started by the worker under a holder of its own (remote/detached.py:
    it outlives this connection) as `git agent run` with the ticket's argv, HOME inside at the
    caller's own $HOME path when the sandbox can show it there (sandbox/homealias.py); this
    process relays your terminal to it until it ends or you detach."""
    from git_agent.commands import worker
    from git_agent.errors import guarded

    return guarded(lambda: worker.run_ticket(ticket), debug=debug)
