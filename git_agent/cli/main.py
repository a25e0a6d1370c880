"""The command line: click parses here and only here; each verb's work lives in its own module."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from git_agent import __version__, ui
from git_agent.cli import remote_verbs
from git_agent.cli.shared import (
    CONTEXT,
    SessionThenPaths,
    State,
    complete_sessions,
    examples,
)
from git_agent.errors import guarded


def _run_options(f: Callable[..., None]) -> Callable[..., None]:
    """The click options of `run`, from the one table in runargs (shared with the fast path)."""
    from git_agent.cli.runargs import RUN_OPTIONS

    for o in reversed(RUN_OPTIONS):
        kind: Any = None
        if o.choices is not None:
            kind = click.Choice(list(o.choices))
        elif o.port or o.upto:
            kind = click.IntRange(1, o.upto or 65535)
        extra: dict[str, Any] = {"is_flag": True} if o.is_flag else {"type": kind}
        if o.multiple:
            extra["multiple"] = True
        f = click.option(*o.flags, o.dest, metavar=o.metavar, help=o.help, **extra)(f)
    return f


def _config_explained() -> str:
    """Each key's meaning and the mount modes, kept as written (the config verb's epilog)."""
    from git_agent.commands.config import explain

    return "".join(f"\n\n\b\n{para}" for para in explain().split("\n\n"))


@click.group(
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent run claude          start claude in a sandbox over this worktree
  git agent review              what did the agent change? (diff + risks)
  git agent apply -i            take its changes file by file into the worktree
  git agent list                sessions of this worktree
  git agent doctor              can this machine sandbox? what is missing?
  git agent config              every agent.* setting, its value and where it came from

Commands: run, review, apply, list, drop, doctor, config, remote, fetch, attach, completion.
`git agent --help` (or `git help agent`) opens the manual; `git agent VERB -h` for a verb.
"""
    ),
)
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option(__version__, "--version", prog_name="git agent")
def cli(debug: bool) -> None:
    """Run a coding agent in a sandbox over a copy-on-write view of this worktree.

    Its writes become a commit on the branch agent/SESSION; review and apply bring them back.
    """
    State.debug = debug or State.debug


@cli.command(
    # options end at the command's name: what follows is the command's own (`claude --resume`);
    # an unknown option before it is a typo, refused, never run as the command
    context_settings={**CONTEXT, "allow_interspersed_args": False},
    epilog=examples(
        """
Examples:
  git agent run claude                 session named after the current branch
  git agent run -s fix-42 codex        a second, parallel session
  git agent run --attempts 3 -- claude -p "fix the flaky test"   sessions S.1..S.3, one base
  git agent run --net isolated --allow-port 5432 claude
  git agent run --preset claude -- npx @anthropic-ai/claude-code
"""
    ),
)
@_run_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(**kwargs: object) -> None:
    """Start COMMAND (default: agent.command, else $SHELL) in the sandbox.

    The worktree is seen at its real path through an overlay: the agent sees everything, and
    every write lands in the session. When it exits, its changes become a commit on
    agent/SESSION. Exits with the agent's own exit status.
    """
    from git_agent.commands import run as run_mod

    sys.exit(run_mod.main(**kwargs))  # type: ignore[arg-type]


@cli.command(
    cls=SessionThenPaths,
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent review                  summary, risks, then the diff (in your pager)
  git agent review fix-42 --stat
  git agent review --json | jq '.files[].path'
  git agent review --net            what the agent reached and what was denied
  git agent review --ignored        build outputs left out of the branch, with sizes
"""
    ),
)
@click.argument(
    "session_name", required=False, metavar="[SESSION]", shell_complete=complete_sessions
)
@click.option("--stat", is_flag=True, help="Summary and risks only, with a diffstat.")
@click.option("--json", "json_out", is_flag=True,
              help="One JSON object on stdout (files, and the network record as `net`).")
@click.option("--net", is_flag=True,
              help="The session's network record instead: one line per connection, allowed or "
                   "denied and why (--net isolated / filtered runs).")
@click.option("--ignored", is_flag=True,
              help="List the session's ignored files (left out of its branch) with sizes.")
@click.argument("paths", nargs=-1, metavar="[-- PATH...]")
def review(session_name: str | None, stat: bool, json_out: bool, net: bool,
           paths: tuple[str, ...], ignored: bool = False) -> None:
    """Show what the session changed: summary, risks, diff of base..agent/SESSION."""
    if ignored:
        from git_agent.commands import ignored as ignored_mod

        sys.exit(ignored_mod.review_main(session_name=session_name, paths=list(paths)))
    from git_agent.commands import review as review_mod

    sys.exit(review_mod.main(session_name=session_name, stat=stat, json_out=json_out,
                             paths=list(paths), net=net))


@cli.command(
    cls=SessionThenPaths,
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent apply                   all of it (three-way merge where you edited too)
  git agent apply -- src/ README.md only these paths
  git agent apply -i                file by file: y n r d Y N R q ?
  git agent apply -p                hunk by hunk, as git add -p: y n q a d s e ?
  git agent apply -p -- src/app.py  the hunks of one file
  git agent apply --merge           write conflict markers (with the base section)
  git agent apply --skip-conflicts  apply what merges; conflicting files stay in the session
  git agent apply --yes             write risky files without asking (scripts)
  git agent apply --commit          as commits on your branch (the agent's own kept)
  git agent apply --commit -- src/  only src/: each commit keeps its src/ changes
  git agent apply --ignored -- dist/ .venv/
                                    copy ignored build outputs out (never over yours)
"""
    ),
)
@click.argument(
    "session_name", required=False, metavar="[SESSION]", shell_complete=complete_sessions
)
@click.option("-i", "--interactive", is_flag=True,
              help="Ask file by file; each file is marked clean, changed by you too, or "
                   "conflicting.")
@click.option("-p", "--patch", is_flag=True,
              help="Ask hunk by hunk (git add -p's keys; d discards from the session); "
                   "what is not taken stays in the session.")
@click.option(
    "--merge", is_flag=True,
    help="On conflict, write conflict markers (diff3 style) instead of refusing.",
)
@click.option(
    "--skip-conflicts", is_flag=True,
    help="Apply what merges, leave conflicting files in the session (exit status 1).",
)
@click.option(
    "-y", "--yes", is_flag=True,
    help="Write risky files without asking (needed without a terminal).",
)
@click.option("--ignored", is_flag=True,
              help="Copy the named ignored files of the session (see review --ignored) into "
                   "the worktree; never over a file of yours.")
@click.option(
    "--commit", is_flag=True,
    help="Land the session as commits on your branch (its own commits, messages and authors "
    "kept; index and HEAD moved as cherry-pick would).",
)
@click.argument("paths", nargs=-1, metavar="[-- PATH...]")
def apply(
    session_name: str | None, interactive: bool, patch: bool, merge: bool, skip_conflicts: bool,
    yes: bool, commit: bool, ignored: bool, paths: tuple[str, ...]
) -> None:
    """Apply the session's changes onto the working tree (index and HEAD untouched but with
    --commit).

    All or nothing: a conflict, a failed write (taken back) or a ^C (which waits for the end)
    leaves the worktree as it was or gives it the whole change (--skip-conflicts: all of what
    merges). With -i or -p a conflicting file is asked like any other: y writes it with
    markers, n leaves it in the session. Risky files are listed first and asked about once
    (without a terminal: refused unless --yes); a change that would make git find another
    repository is always refused. --commit lands the session as commits on your branch
    instead (index and HEAD move, as cherry-pick). After any apply agent/SESSION holds only
    the work still pending; what it was stays at refs/agent-history/SESSION."""
    if ignored:
        if interactive or patch or merge or skip_conflicts or commit:
            raise click.UsageError("--ignored copies named files whole: it takes no -i, -p, "
                                   "--merge, --skip-conflicts or --commit")
        from git_agent.commands import ignored as ignored_mod

        sys.exit(ignored_mod.apply_main(session_name=session_name, paths=list(paths), yes=yes))
    from git_agent.commands import apply as apply_mod

    if interactive and patch:
        raise click.UsageError("-i and -p: choose one")
    if skip_conflicts and merge:
        raise click.UsageError("--merge and --skip-conflicts: choose one")
    sys.exit(
        apply_mod.main(
            session_name=session_name, interactive=interactive, merge=merge, paths=list(paths),
            yes=yes, patch=patch, skip_conflicts=skip_conflicts, commit=commit,
        )
    )


@cli.command(
    "list",
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent list                    name, state, changed files, last command
  git agent list --json | jq -r '.[].name'
  git agent list --all              the sessions of every worktree of this repository
"""
    ),
)
@click.option("--json", "json_out", is_flag=True, help="A JSON list on stdout.")
@click.option("--all", "all_worktrees", is_flag=True,
              help="Sessions of every worktree of this repository, with a WORKTREE column.")
def list_(json_out: bool, all_worktrees: bool) -> None:
    """List the sessions of this worktree (--all: of every worktree of the repository)."""
    from git_agent.commands import list as list_mod

    sys.exit(list_mod.main(json_out=json_out, all_worktrees=all_worktrees))


@cli.command(
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent run --no-capture -- make && git agent capture
  git agent capture fix-42          while it runs: its state now, on agent/fix-42
"""
    ),
)
@click.argument("session_name", required=False, metavar="[SESSION]",
                shell_complete=complete_sessions)
def capture(session_name: str | None) -> None:
    """Bring agent/SESSION up to date with what the session holds now."""
    from git_agent.commands import capture as capture_mod

    sys.exit(capture_mod.main(session_name=session_name))


@cli.command(
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent drop fix-42             asks first
  git agent drop -f fix-42          no question (scripts)
  git agent drop -f main            a stale session (its repository was deleted and
                                    made anew here): its folder only, no refs
"""
    ),
)
@click.argument("session_name", metavar="SESSION", shell_complete=complete_sessions)
@click.option("-f", "--force", is_flag=True, help="Do not ask (needed without a terminal).")
def drop(session_name: str, force: bool) -> None:
    """Delete a session: its overlay, metadata, base ref, branch agent/SESSION, its record
    refs/agent-history/SESSION and, if it ran on a remote, its copy there (or says it is left)."""
    from git_agent.commands import drop as drop_mod

    sys.exit(drop_mod.main(session_name=session_name, force=force))


@cli.command(
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent doctor                  every check, with the fix for what fails
  git agent doctor | grep FAIL
"""
    ),
)
def doctor() -> None:
    """Check what this machine can sandbox, and say how to fix what it cannot."""
    from git_agent.commands import doctor as doctor_mod

    sys.exit(doctor_mod.main())


@cli.command(
    "config",
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent config                  effective values (tab-separated when piped)
  git agent config agent.net        one key's value, as `git config KEY` prints it
  git agent config --json
  git config agent.net none         set one for this repository (--global for all)"""
        + _config_explained()
    ),
)
@click.argument("key", required=False, metavar="[KEY]")
@click.option("--json", "json_out", is_flag=True, help="A JSON list on stdout.")
def config_cmd(key: str | None, json_out: bool) -> None:
    """Show every agent.* setting: its effective value and where it came from.

    Settings are git config keys (system, global, repository, worktree: the last one wins);
    a `run` flag wins over them. With KEY, print its effective value(s), one a line (exit 1
    when it is unset and has no default).
    """
    from git_agent.commands import config

    sys.exit(config.main(key=key, json_out=json_out))


@cli.command(
    "completion",
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent completion bash > ~/.local/share/bash-completion/completions/git-agent
  git agent completion zsh > ~/.zfunc/_git-agent      (with fpath+=(~/.zfunc))
  git agent completion fish > ~/.config/fish/completions/git-agent.fish
"""
    ),
)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (for git-agent and `git agent`)."""
    from click.shell_completion import get_completion_class

    from git_agent.cli import completion as comp

    cls = get_completion_class(shell)
    assert cls is not None
    source = cls(cli, {}, comp.PROG, comp.COMPLETE_VAR).source()
    click.echo(comp.script(shell, source), nl=False)


for _v in (remote_verbs.fetch, remote_verbs.attach, remote_verbs.remote, remote_verbs.worker_cmd):
    cli.add_command(_v)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    State.debug = "--debug" in args[:1] or bool(os.environ.get("GIT_AGENT_DEBUG"))
    if args[:1] == ["--help"]:
        from git_agent.cli import manpage

        return manpage.open_manual()  # ^C in the pager is its own: we wait for man

    def invoke() -> int:
        try:
            cli.main(
                args=args,
                prog_name="git agent",
                standalone_mode=False,
                complete_var="_GIT_AGENT_COMPLETE",
            )
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except click.exceptions.Abort:
            ui.say("aborted")
            return 130
        except click.UsageError as e:
            if e.ctx is not None and not [a for a in args if a != "--debug"]:  # bare `git agent`
                click.echo(e.ctx.get_help(), err=True)
                return 2
            where = e.ctx.command_path if e.ctx is not None else "git agent"
            msg = " ".join(e.format_message().split()).rstrip(".")
            ui.say(f"{msg[:1].lower()}{msg[1:]} (see `{where} -h`)")
            return 2
        except click.ClickException as e:
            e.show()
            return e.exit_code
        return 0

    return guarded(invoke, debug=State.debug)
