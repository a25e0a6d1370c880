"""What the command line's verbs share: click settings, the argument shapes, completion of
session names, and whether --debug was given."""

from __future__ import annotations

import os

import click

# `git agent --help` never reaches us (git opens the manual); `git agent VERB --help` does
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Group(click.Group):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog:
            formatter.write_paragraph()
            for line in self.epilog.splitlines():
                formatter.write_text(line) if line.strip() else formatter.write_paragraph()


class SessionThenPaths(click.Command):
    """`VERB [SESSION] [-- PATH...]`: a word after `--` is a path, never the session, as in
    git (`git agent apply -- src/` is the default session's src/)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        before = args[: args.index("--")] if "--" in args else args
        named = any(not a.startswith("-") for a in before)
        rest = super().parse_args(ctx, args)
        if not named and ctx.params.get("session_name") is not None:
            ctx.params["paths"] = (ctx.params["session_name"], *ctx.params.get("paths", ()))
            ctx.params["session_name"] = None
        return rest


def examples(text: str) -> str:
    """An epilog kept as written (click would rewrap it)."""
    return "\b\n" + text.strip("\n")


def complete_sessions(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Session names of this worktree, for shell completion (nothing when not in a repo, or
    after `--`: what follows is paths)."""
    words = os.environ.get("COMP_WORDS", "").split()
    cword = os.environ.get("COMP_CWORD", "")
    if "--" in words[: int(cword) if cword.isdigit() else len(words)]:
        return []
    try:
        from git_agent import repo, session

        names = [s.name for s in session.list_sessions(repo.find_worktree())]
    except Exception:  # noqa: BLE001 - completion must never print a traceback
        return []
    return [n for n in names if n.startswith(incomplete)]


class State:
    """--debug (or GIT_AGENT_DEBUG): internal errors show their traceback."""

    debug = False
