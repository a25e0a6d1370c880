"""The verbs of sessions beyond one machine: fetch, remote (add, list, remove, doctor) and the
hidden worker that a remote's git agent runs (docs/remote.md)."""

from __future__ import annotations

import sys

import click

from git_agent.cli.shared import CONTEXT, complete_sessions, examples


@click.command(
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent fetch                   the current branch's session, from where it ran
  git agent fetch fix-42
  git agent fetch --all             every session of this worktree that ran on a remote
"""
    ),
)
@click.argument(
    "session_name", required=False, metavar="[SESSION]", shell_complete=complete_sessions
)
@click.option("--all", "all_", is_flag=True, help="Every session that ran on a remote.")
def fetch(session_name: str | None, all_: bool) -> None:
    """Bring back agent/SESSION from the remote it ran on (`run --on`), checked as untrusted."""
    from git_agent.commands import fetch as fetch_mod

    sys.exit(fetch_mod.main(session_name, all_=all_))


@click.command(
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent run --on box --detach -- claude -p "fix the flaky test"
  git agent attach                  the current branch's session, where it runs
  git agent attach fix-42           ^] leaves it running; when it ends, agent/fix-42 comes back
"""
    ),
)
@click.argument(
    "session_name", required=False, metavar="[SESSION]", shell_complete=complete_sessions
)
def attach(session_name: str | None) -> None:
    """Join your terminal to SESSION running on a remote (`run --on`, --detach or a lost
    connection); ^] detaches again. When the agent ends, agent/SESSION is fetched."""
    from git_agent.commands import attach as attach_mod

    sys.exit(attach_mod.main(session_name))


@click.group(
    "remote",
    invoke_without_command=True,
    context_settings=CONTEXT,
    epilog=examples(
        """
Examples:
  git agent remote add box ssh://me@gpu-box        a machine sessions may run on
  git agent remote add box ssh://me@gpu-box:2222 --global
  git agent remote add pod podman://                 a container per run on this podman
  git agent remote add pod podman://CONNECTION       on a `podman system connection`
  git agent remote list
  git agent remote doctor box                      run doctor there (ssh, or a container)
  git agent remote remove box
"""
    ),
)
@click.pass_context
def remote(ctx: click.Context) -> None:
    """Machines that sessions may run on (git config agent.remote.NAME.url); alone, as
    `git remote` does, it lists them.

    `git agent run --on NAME` runs a session there; `fetch` brings it back (docs/remote.md).
    """
    if ctx.invoked_subcommand is None:
        from git_agent.commands import remote as remote_mod

        sys.exit(remote_mod.list_())


@remote.command("add", context_settings=CONTEXT)
@click.argument("name")
@click.argument("url")
@click.option("--global", "global_", is_flag=True,
              help="For all your repositories (~/.gitconfig), not just this one.")
def remote_add(name: str, url: str, global_: bool) -> None:
    """Add remote NAME at URL: ssh://[user@]host[:port], podman://CONNECTION or podman://."""
    from git_agent.commands import remote as remote_mod

    sys.exit(remote_mod.add(name, url, global_=global_))


@remote.command("list", context_settings=CONTEXT)
def remote_list() -> None:
    """List the remotes: name, URL and where it is set (tab-separated)."""
    from git_agent.commands import remote as remote_mod

    sys.exit(remote_mod.list_())


@remote.command("remove", context_settings=CONTEXT)
@click.argument("name")
def remote_remove(name: str) -> None:
    """Remove remote NAME from the git config that sets it."""
    from git_agent.commands import remote as remote_mod

    sys.exit(remote_mod.remove(name))


@remote.command("doctor", context_settings=CONTEXT)
@click.argument("name")
def remote_doctor(name: str) -> None:
    """Run `git agent doctor` on remote NAME (ssh, no agent forwarding); exit 1 if it fails."""
    from git_agent.commands import remote as remote_mod

    sys.exit(remote_mod.doctor(name))


@click.command("worker", hidden=True, context_settings=CONTEXT)
@click.option("--ticket", default=None, help="Run the prepared session with this ticket.")
def worker_cmd(ticket: str | None) -> None:
    """The remote side: one JSON request on stdin, one JSON answer on stdout."""
    from git_agent.cli import worker_entry

    sys.exit(worker_entry.main([] if ticket is None else ["--ticket", ticket]))
