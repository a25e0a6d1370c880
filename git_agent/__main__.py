"""Entry point of the `git-agent` console script (and `python -m git_agent`).

`git agent run ...` with plain options skips importing click (a third of the launch time):
runargs parses it from the same option table click uses, or hands it to click when unsure.
So does the hidden `worker` (cli/worker_entry.py), which `run --on` starts on the remote.
"""

import _signal  # type: ignore[import-not-found]  # C; signal.py imports enum (3 ms)

# A ^C while git agent starts ends it at once, as it ends a C program: killed by SIGINT, with
# no Python traceback; errors.guarded gives Python's KeyboardInterrupt back once it can say
# "interrupted" in one line. (A ^C ignored by the caller stays ignored.)
if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)

import os  # noqa: E402 - after the line above, which must run as early as it can
import sys  # noqa: E402


def _closed_streams_to_dev_null() -> None:
    """A standard stream closed by the caller (`>&-`) becomes /dev/null, as git does: output to
    it is dropped instead of failing, and no file git agent opens takes its fd."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is None:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)  # os.open made it close-on-exec: children get it too
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 - for the process


def main(argv: list[str] | None = None) -> int:
    _closed_streams_to_dev_null()
    if argv is None:  # the process the user started: git's wrapper, or this one
        from git_agent.sandbox import lifetime

        lifetime.watch_parent()
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"]:
        from git_agent.cli.runargs import fast_parse

        kw = fast_parse(args[1:])
        if kw is not None:
            from git_agent.commands import run
            from git_agent.errors import guarded

            return guarded(lambda: run.main(**kw), debug=bool(os.environ.get("GIT_AGENT_DEBUG")))
    if args[:1] == ["worker"]:  # what a remote's sshd starts (run --on): no click either
        from git_agent.cli import worker_entry

        code = worker_entry.main(args[1:])
        if code is not None:
            return code
    from git_agent.cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
