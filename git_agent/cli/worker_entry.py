"""The hidden `git-agent worker` without click (it starts up to three times per `run --on`, so
its launch time counts): the ops it serves on stdin/stdout, and a ticketed run, which runs
`git agent run` in this same process rather than starting a second interpreter."""

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
    """The prepared run: the ticket taken (cwd and environment set here), then `git agent run`
    with its argv, parsed as the console script parses it, HOME inside at the caller's own
    $HOME path when the sandbox can show it there (sandbox/homealias.py)."""
    from git_agent.commands import worker
    from git_agent.errors import guarded

    argv: list[str] = []
    home: list[str] = []

    def take() -> int:
        got, alias = worker.take_ticket(ticket)
        argv[:] = got
        home[:] = [alias] if alias else []
        return 0

    code = guarded(take, debug=debug)
    if code:
        return code
    from git_agent.cli.runargs import fast_parse

    kw = fast_parse(argv[1:])
    if kw is not None:
        from pathlib import Path

        from git_agent.commands import run

        alias = Path(home[0]) if home else None
        return guarded(lambda: run.main(**kw, home_alias=alias), debug=debug)
    from git_agent.cli.main import main as cli_main  # HOME stays the remote's there

    return cli_main(argv)
