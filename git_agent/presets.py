"""Agent presets: what each known agent needs inside (environment, home dirs), as data."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from git_agent import config
from git_agent.errors import UsageError


@dataclass(frozen=True)
class Preset:
    name: str
    pass_env: tuple[str, ...] = ()
    set_env: dict[str, str] = field(default_factory=dict)
    mounts: tuple[str, ...] = ()
    doc: str = ""


# One table. pass_env entries ending in "*" pass every variable with that prefix.
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("claude", pass_env=("ANTHROPIC_*", "CLAUDE_CODE_*", "CLAUDE_CONFIG_DIR",
                                   "AWS_REGION", "AWS_PROFILE", "CLOUD_ML_REGION",
                                   "GOOGLE_CLOUD_PROJECT", "DISABLE_AUTOUPDATER"),
               doc="Claude Code; logs in once in the agent home (~/.claude, ~/.claude.json)"),
        Preset("codex", pass_env=("OPENAI_*", "CODEX_*", "AZURE_OPENAI_*"),
               doc="OpenAI Codex CLI; ~/.codex in the agent home"),
        Preset("gemini", pass_env=("GEMINI_*", "GOOGLE_*"), doc="Gemini CLI; ~/.gemini"),
        Preset("aider", pass_env=("AIDER_*", "OPENAI_*", "ANTHROPIC_*", "GEMINI_*",
                                  "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY", "OLLAMA_API_BASE"),
               doc="aider; ~/.aider* in the agent home"),
        Preset("opencode", pass_env=("OPENCODE_*", "ANTHROPIC_*", "OPENAI_*", "GEMINI_*",
                                     "OPENROUTER_API_KEY"), doc="opencode; ~/.config/opencode"),
        Preset("goose", pass_env=("GOOSE_*", "ANTHROPIC_*", "OPENAI_*", "GOOGLE_*",
                                  "OPENROUTER_API_KEY"), doc="goose; ~/.config/goose"),
    )
}


def expand_env_names(patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Exact names as given; `PREFIX*` becomes every variable set now with that prefix."""
    out: list[str] = []
    for pat in patterns:
        if pat.endswith("*"):
            out += sorted(k for k in os.environ if k.startswith(pat[:-1]))
        else:
            out.append(pat)
    return out


def resolve(*, command: list[str], name: str | None, cfg: config.GitConfig) -> Preset:
    """The preset named, else the one matching the command's name, else an empty one."""
    key = name or os.path.basename(command[0]) if command else name or ""
    base = PRESETS.get(key or "")
    if name and base is None and not cfg.with_prefix(f"agent.preset.{name}."):
        raise UsageError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    base = base or Preset(key or "none")
    prefix = f"agent.preset.{key}."
    extra_env = cfg.get_all(prefix + "passEnv")
    extra_mounts = cfg.get_all(prefix + "mount")
    set_env = dict(base.set_env)
    for kv in cfg.get_all(prefix + "setEnv"):
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise UsageError(f"{prefix}setEnv: {kv!r} is not NAME=VALUE")
        set_env[k] = v
    return Preset(
        name=base.name,
        pass_env=tuple(expand_env_names([*base.pass_env, *extra_env])),
        set_env=set_env,
        mounts=(*base.mounts, *extra_mounts),
        doc=base.doc,
    )
