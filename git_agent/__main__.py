"""Entry point of the `git-agent` console script (and `python -m git_agent`)."""

import sys


def main(argv: list[str] | None = None) -> int:
    from git_agent.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
