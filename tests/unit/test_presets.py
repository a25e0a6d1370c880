"""Presets: chosen by command name or --preset, pass only what they name, git config overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from git_agent.errors import UsageError
from git_agent.sandbox import build as sandbox
from git_agent.settings import gitconfig, keys, presets
from tests.conftest import run_git

NO_CONFIG = gitconfig.GitConfig()

# Secrets no preset may pass: whatever agent runs, these stay outside.
DECOYS = {
    "AWS_SECRET_ACCESS_KEY": "aws", "AWS_ACCESS_KEY_ID": "aws", "GITHUB_TOKEN": "gh",
    "GH_TOKEN": "gh", "SSH_AUTH_SOCK": "/run/ssh", "NPM_TOKEN": "npm", "DATABASE_URL": "pg://",
    "HOMEBREW_GITHUB_API_KEY": "x", "KUBECONFIG": "/k", "VAULT_TOKEN": "v",
}


def env_inside(p: presets.Preset, home: Path) -> dict[str, str]:
    return sandbox.environment(home=home, session="s", pass_env=list(p.pass_env), set_env=p.set_env)


def test_the_command_name_selects_the_preset() -> None:
    p = presets.resolve(command=["/usr/local/bin/claude", "-p", "hi"], name=None, cfg=NO_CONFIG)
    assert p.name == "claude"
    assert p.command == ("/usr/local/bin/claude", "-p", "hi")
    assert presets.resolve(command=["codex"], name=None, cfg=NO_CONFIG).name == "codex"
    assert presets.resolve(command=["make", "test"], name=None, cfg=NO_CONFIG).name == "none"


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_a_preset_passes_only_what_it_names(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    listed = {pat.rstrip("*") + ("X" if pat.endswith("*") else "")
              for p in presets.PRESETS.values() for pat in p.pass_env}
    for var in sorted(listed):
        monkeypatch.setenv(var, f"v-{var}")
    for k, v in DECOYS.items():
        monkeypatch.setenv(k, v)
    p = presets.resolve(command=[name], name=None, cfg=NO_CONFIG)
    env = env_inside(p, tmp_path)
    mine = {v for v in listed if any(v == pat or (pat.endswith("*") and v.startswith(pat[:-1]))
                                     for pat in presets.PRESETS[name].pass_env)}
    assert mine and mine <= env.keys()
    others = listed - mine - set(sandbox.ENV_ALLOW)
    assert not others & env.keys(), f"{name} passes another agent's variables"
    assert not DECOYS.keys() & env.keys()
    for k, v in presets.PRESETS[name].set_env.items():
        assert env[k] == v


def test_claude_gets_its_key_and_codex_does_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-oai")
    claude = env_inside(presets.resolve(command=["claude"], name=None, cfg=NO_CONFIG), tmp_path)
    codex = env_inside(presets.resolve(command=["codex"], name=None, cfg=NO_CONFIG), tmp_path)
    none = env_inside(presets.resolve(command=["sh"], name=None, cfg=NO_CONFIG), tmp_path)
    assert claude.get("ANTHROPIC_API_KEY") == "sk-ant" and "OPENAI_API_KEY" not in claude
    assert codex.get("OPENAI_API_KEY") == "sk-oai" and "ANTHROPIC_API_KEY" not in codex
    assert "ANTHROPIC_API_KEY" not in none and "OPENAI_API_KEY" not in none


def test_prefix_patterns_expand_to_what_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOSE_PROVIDER", "x")
    monkeypatch.setenv("GOOSEBERRY", "y")  # same letters, but GOOSE_* needs the underscore
    p = presets.resolve(command=["goose"], name=None, cfg=NO_CONFIG)
    assert "GOOSE_PROVIDER" in p.pass_env and "GOOSEBERRY" not in p.pass_env
    assert not any(e.endswith("*") for e in p.pass_env)


def test_explicit_preset_wins_over_the_command_name() -> None:
    p = presets.resolve(command=["npx", "@anthropic-ai/claude-code"], name="claude", cfg=NO_CONFIG)
    assert p.name == "claude" and p.command == ("npx", "@anthropic-ai/claude-code")
    assert presets.resolve(command=["claude"], name="none", cfg=NO_CONFIG).pass_env == ()


def test_unknown_preset_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown preset 'nope'.*claude") as e:
        presets.resolve(command=["sh"], name="nope", cfg=NO_CONFIG)
    assert e.value.exit_code == 2


def test_user_config_extends_a_builtin_preset(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    run_git("config", "--add", "agent.preset.claude.passEnv", "MY_TOKEN", cwd=repo)
    run_git("config", "--add", "agent.preset.claude.passEnv", "CORP_*", cwd=repo)
    run_git("config", "--add", "agent.preset.claude.setEnv", "CLAUDE_CODE_USE_BEDROCK=1", cwd=repo)
    run_git("config", "--add", "agent.preset.claude.setEnv", "EQ=a=b", cwd=repo)
    run_git("config", "--add", "agent.preset.claude.mount", ".aws", cwd=repo)
    monkeypatch.setenv("MY_TOKEN", "t")
    monkeypatch.setenv("CORP_PROXY", "p")
    monkeypatch.setenv("OTHER_TOKEN", "o")
    p = presets.resolve(command=["claude"], name=None, cfg=gitconfig.read(repo))
    assert p.source == "builtin + git config"
    env = env_inside(p, tmp_path)
    assert env["MY_TOKEN"] == "t" and env["CORP_PROXY"] == "p" and "OTHER_TOKEN" not in env
    assert env["CLAUDE_CODE_USE_BEDROCK"] == "1" and env["EQ"] == "a=b"
    assert env["DISABLE_AUTOUPDATER"] == "1"  # the built-in part stays
    assert p.mounts[-1] == ".aws" and ".local/share/claude" in p.mounts
    # another preset is untouched
    codex = presets.resolve(command=["codex"], name=None, cfg=gitconfig.read(repo))
    assert "MY_TOKEN" not in codex.pass_env


def test_user_defined_preset_keeps_its_name_case(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_git("config", "agent.preset.MyAgent.passEnv", "MYAGENT_KEY", cwd=repo)
    monkeypatch.setenv("MYAGENT_KEY", "k")
    cfg = gitconfig.read(repo)
    p = presets.resolve(command=["MyAgent"], name=None, cfg=cfg)
    assert p.name == "MyAgent" and p.pass_env == ("MYAGENT_KEY",) and p.source == "git config"
    assert presets.resolve(command=["myagent"], name=None, cfg=cfg).name == "none"


def test_preset_command_runs_a_known_agent_with_its_needs(repo: Path) -> None:
    run_git("config", "agent.preset.cc.command", "claude --dangerously-skip-permissions", cwd=repo)
    cfg = gitconfig.read(repo)
    p = presets.resolve(command=["cc", "-p", "hi"], name=None, cfg=cfg)
    assert p.command == ("claude", "--dangerously-skip-permissions", "-p", "hi")
    assert p.name == "cc" and "ANTHROPIC_*" not in p.pass_env
    assert p.set_env["DISABLE_AUTOUPDATER"] == "1"  # claude's preset came along
    # --preset cc with another command: the command given runs
    assert presets.resolve(command=["sh"], name="cc", cfg=cfg).command == ("sh",)


def test_agent_preset_applies_only_when_the_command_has_none(repo: Path) -> None:
    run_git("config", "agent.preset", "aider", cwd=repo)
    cfg = gitconfig.read(repo)
    assert presets.resolve(command=["python", "-m", "aider"], name=None, cfg=cfg).name == "aider"
    assert presets.resolve(command=["claude"], name=None, cfg=cfg).name == "claude"
    run_git("config", "agent.preset", "nope", cwd=repo)
    with pytest.raises(UsageError, match="agent.preset: unknown preset 'nope'"):
        presets.resolve(command=["sh"], name=None, cfg=gitconfig.read(repo))


@pytest.mark.parametrize(("key", "value", "message"), [
    ("agent.preset.claude.passEnv", "*", "not a variable name"),
    ("agent.preset.claude.passEnv", "A B", "not a variable name"),
    ("agent.preset.claude.setEnv", "NOVALUE", "not NAME=VALUE"),
    ("agent.preset.claude.setEnv", "1X=2", "not NAME=VALUE"),
    ("agent.preset.claude.passenvs", "X", "unknown setting"),
    ("agent.preset.claude.command", "'unclosed", "agent.preset.claude.command"),
])
def test_bad_preset_config_is_a_usage_error(repo: Path, key: str, value: str, message: str) -> None:
    run_git("config", key, value, cwd=repo)
    with pytest.raises(UsageError, match=message):
        presets.resolve(command=["claude"], name=None, cfg=gitconfig.read(repo))


def _under(path: str, entry: str) -> bool:
    a, b = path.rstrip("/"), entry.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_what_an_agent_keeps_in_its_home_is_writable(name: str) -> None:
    """agent.protect mounts read-only: it must not cover an agent's login or settings."""
    p = presets.PRESETS[name]
    assert p.home, "say where the agent keeps its login and settings"
    for path in (*p.home, *p.mounts):
        assert not path.startswith(("/", "~")) and ".." not in path
        for entry in keys.DEFAULT_PROTECT:
            assert not _under(path, entry), f"{path} collides with protected {entry}"
    for path in p.home:  # a read-only install mount would hide what the agent writes
        assert not any(_under(path, m) for m in (*p.mounts, *keys.DEFAULT_MOUNTS))


def test_git_config_keys_keep_the_subsection_case(repo: Path) -> None:
    run_git("config", "agent.preset.Foo.passEnv", "A", cwd=repo)
    run_git("config", "agent.preset.foo.passEnv", "B", cwd=repo)
    cfg = gitconfig.read(repo)
    assert cfg.get_all("agent.preset.Foo.PASSENV") == ["A"]
    assert cfg.get_all("AGENT.preset.foo.passEnv") == ["B"]
    assert [e.value for e in cfg.with_prefix("agent.preset.Foo.")] == ["A"]
