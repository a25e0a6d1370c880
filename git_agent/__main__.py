"""Entry point of the `git-agent` console script (and `python -m git_agent`).

`git agent run ...` with plain options skips importing click (a third of the launch time):
runargs parses it from the same option table click uses, or hands it to click when unsure.
"""

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"]:
        from git_agent.runargs import fast_parse

        kw = fast_parse(args[1:])
        if kw is not None:
            from git_agent import run
            from git_agent.errors import guarded

            return guarded(lambda: run.main(**kw), debug=bool(os.environ.get("GIT_AGENT_DEBUG")))
    from git_agent.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
