"""settings.resolve: flags + git config + preset -> the run's settings, decided without bwrap."""

from __future__ import annotations

from pathlib import Path

import pytest

from git_agent.errors import UsageError
from git_agent.repo import Worktree
from git_agent.settings import gitconfig, keys
from git_agent.settings.resolve import RunFlags, RunSettings, resolve


def cfg(**values: str | list[str]) -> gitconfig.GitConfig:
    entries = []
    for key, v in values.items():
        for one in v if isinstance(v, list) else [v]:
            entries.append(gitconfig.Entry(gitconfig.canonical(f"agent.{key}"), one, "local",
                                        "file:.git/config"))
    return gitconfig.GitConfig(entries)


@pytest.fixture
def wt(tmp_path: Path) -> Worktree:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / ".env").write_text("SECRET=1\n")
    (root / "sub" / "key").write_text("k\n")
    return Worktree(root=root, git_dir=root / ".git", common_dir=root / ".git", cwd=root / "sub")


def settle(wt: Worktree, flags: RunFlags | None = None, c: gitconfig.GitConfig | None = None,
           environ: dict[str, str] | None = None) -> RunSettings:
    return resolve(flags=flags or RunFlags(), cfg=c or cfg(), worktree=wt, home=Path("/home/u"),
                   default_session="main", environ=environ or {"SHELL": "/bin/zsh"})


def test_defaults(wt: Worktree) -> None:
    s = settle(wt)
    assert s.session_name == "main" and s.net == "host" and s.ports == []
    assert s.command == ["/bin/zsh"]  # the user's shell
    assert s.agent_home == Path("/home/u/aihome")
    assert s.protect == list(keys.DEFAULT_PROTECT)
    assert s.mount_specs[: len(keys.DEFAULT_MOUNTS)] == list(keys.DEFAULT_MOUNTS)


def test_flag_beats_config(wt: Worktree) -> None:
    c = cfg(net="none", home="~/other", command="aider --yes")
    assert settle(wt, c=c).net == "none"
    assert settle(wt, RunFlags(net="host"), c).net == "host"
    assert settle(wt, c=c).agent_home == Path("/home/u/other")
    assert settle(wt, RunFlags(home="/abs/h"), c).agent_home == Path("/abs/h")
    assert settle(wt, c=c).command[:2] == ["aider", "--yes"]
    assert settle(wt, RunFlags(command=("make", "test")), c).command == ["make", "test"]


def test_ports_belong_to_the_isolated_mode(wt: Worktree) -> None:
    assert settle(wt, RunFlags(net="isolated", allow_ports=(5432, 5432, 6379))).ports == [5432,
                                                                                          6379]
    with pytest.raises(UsageError, match="needs --net isolated"):
        settle(wt, RunFlags(net="host", allow_ports=(5432,)))
    # a configured port belongs to a configured isolated mode: --net none wins over it
    c = cfg(net="isolated", allowPort="5432")
    assert settle(wt, c=c).ports == [5432]
    assert settle(wt, RunFlags(net="none"), c).ports == []


@pytest.mark.parametrize("bad", ["x", "0", "65536", "-1"])
def test_bad_ports(wt: Worktree, bad: str) -> None:
    with pytest.raises(UsageError, match="agent.allowPort"):
        settle(wt, c=cfg(net="isolated", allowPort=bad))


def test_bad_net_mode(wt: Worktree) -> None:
    with pytest.raises(UsageError, match="is not one of"):
        settle(wt, RunFlags(net="internet"))


def test_hide_paths_relative_to_cwd_for_flags_and_to_root_for_config(wt: Worktree) -> None:
    s = settle(wt, RunFlags(hide=("key", "missing")), cfg(hide=".env"))
    assert s.hide == [wt.root / ".env", wt.root / "sub" / "key"]
    assert s.warnings == ["hide missing: does not exist, nothing to hide"]


@pytest.mark.parametrize("bad", ["../../etc", "/etc/passwd", "../.git/config", ".."])
def test_hide_outside_the_worktree_or_in_git_is_refused(wt: Worktree, bad: str) -> None:
    with pytest.raises(UsageError, match="--hide"):
        settle(wt, RunFlags(hide=(bad,)))


def test_ssh_agent_socket_only_when_passed(wt: Worktree) -> None:
    env = {"SSH_AUTH_SOCK": "/run/user/1/ssh.sock"}
    assert "SSH_AUTH_SOCK" not in settle(wt, environ=env).set_env
    s = settle(wt, RunFlags(allow_sockets=("/run/user/1/ssh.sock",)), environ=env)
    assert s.set_env["SSH_AUTH_SOCK"] == "/run/user/1/ssh.sock"


def test_a_presets_quiet_switches_are_set_unless_the_user_sets_them(wt: Worktree) -> None:
    claude = RunFlags(command=("claude", "-p", "hi"))
    s = settle(wt, claude)
    assert s.set_env["DISABLE_TELEMETRY"] == "1"
    assert s.set_env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert s.set_env["DISABLE_AUTOUPDATER"] == "1"  # set_env: always
    mine = settle(wt, claude, environ={"DISABLE_TELEMETRY": "0", "DISABLE_AUTOUPDATER": "0"})
    assert "DISABLE_TELEMETRY" not in mine.set_env and "DISABLE_TELEMETRY" in mine.pass_env
    assert mine.set_env["DISABLE_AUTOUPDATER"] == "1"
    assert settle(wt, RunFlags(command=("gemini",))).set_env["GEMINI_TELEMETRY_ENABLED"] == "false"
    assert "DISABLE_TELEMETRY" not in settle(wt, RunFlags(command=("sh",))).set_env


def test_codex_runs_without_its_own_sandbox_and_a_later_flag_still_wins(wt: Worktree) -> None:
    s = settle(wt, RunFlags(command=("codex", "exec", "-c", "sandbox_mode=read-only", "hi")))
    assert s.command[0] == "codex" and s.command[-4:] == ["exec", "-c", "sandbox_mode=read-only",
                                                          "hi"]
    given = s.command[1:-4]
    assert 'sandbox_mode="danger-full-access"' in given and "analytics.enabled=false" in given
    assert given[::2] == ["-c"] * (len(given) // 2)
    # only when codex itself is the command: not for a wrapper that runs it
    assert settle(wt, RunFlags(command=("npx", "codex"), preset="codex")).command == ["npx",
                                                                                       "codex"]
