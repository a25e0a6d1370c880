"""Agent presets: what each known agent needs inside (environment, home dirs), as data."""

from __future__ import annotations

import os
import re
import shlex

from git_agent.errors import UsageError
from git_agent.record import Record
from git_agent.settings.gitconfig import GitConfig
from git_agent.settings.keys import PRESET_VARS as VARS

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from typing import Any


class Preset(Record):
    __slots__ = (
        "name", "pass_env", "set_env", "mounts", "doc", "home", "aliases", "command", "source",
        "install",
        "keep", "keep_json",
        "allow_hosts", "project",
        "default_env", "args",
    )

    def __init__(
        self,
        name: str,
        pass_env: tuple[str, ...] = (),
        set_env: dict[str, str] | None = None,
        mounts: tuple[str, ...] = (),
        doc: str = "",
        home: tuple[str, ...] = (),
        aliases: tuple[str, ...] = (),
        command: tuple[str, ...] = (),
        source: str = "builtin",
        install: str = "",
        keep: tuple[str, ...] = (),
        keep_json: dict[str, tuple[str, ...]] | None = None,
        allow_hosts: tuple[str, ...] = (),
        default_env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        project: tuple[str, ...] = (),
    ):
        self.name = name
        self.pass_env = pass_env  # names passed when set; "PREFIX*" passes every PREFIX...
        self.set_env: dict[str, str] = set_env if set_env is not None else {}
        self.mounts = mounts  # real-home paths shown inside, agent.mount syntax
        self.doc = doc
        self.home = home  # where it writes in the agent home (login, settings); "/" = dir
        self.aliases = aliases  # other command names that select it
        self.command = command  # from resolve(): the argv to run (agent.preset.NAME.command)
        self.source = source  # builtin, git config, builtin + git config, none
        self.install = install  # how to install the agent (said when it is not found inside)
        # login files carried back from the session's home to the shared agent home after a
        # run (data only: never a file that holds commands); keep_json: a JSON file of which
        # only these top-level keys are carried back
        self.keep = keep
        self.keep_json: dict[str, tuple[str, ...]] = keep_json if keep_json is not None else {}
        self.allow_hosts = allow_hosts  # its API hosts, reachable in --net filtered
        # set inside unless the user's environment sets them (they are passed too): the
        # switches that stop telemetry, update checks and downloads of plugins
        self.default_env: dict[str, str] = default_env if default_env is not None else {}
        self.args = args  # put after the agent's own name when that is the command run
        self.project = project  # what it reads in the repository (config, instructions);
        # "/" = dir. Review flags each as a risk (mergeback/risks.py derives its rows from it)

    def replace(self, **changes: Any) -> Preset:
        """A copy with the given fields changed."""
        return Preset(**{**{n: getattr(self, n) for n in self.__slots__}, **changes})


# What any networked agent needs to reach its API from behind a proxy or a private CA.
NET_ENV = (
    "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
    "no_proxy", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
)


# How each agent installs, as its docs say (run outside the sandbox; said when `git agent run
# NAME` does not find it inside). A tool under your home must land in a mounted dir.
INSTALL = {
    "claude": "npm i -g @anthropic-ai/claude-code (or curl -fsSL https://claude.ai/install.sh "
              "| bash)",
    "codex": "npm i -g @openai/codex",
    "gemini": "npm i -g @google/gemini-cli",
    "aider": "uv tool install aider-chat (or pipx install aider-chat)",
    "opencode": "npm i -g opencode-ai (or curl -fsSL https://opencode.ai/install | bash)",
    "goose": "curl -fsSL https://github.com/block/goose/releases/download/stable/"
             "download_cli.sh | bash",
    "cursor-agent": "curl https://cursor.com/install -fsS | bash",
    "amp": "npm i -g @sourcegraph/amp",
    "qwen": "npm i -g @qwen-code/qwen-code",
    "crush": "npm i -g @charmland/crush",
}


def _p(name: str, env: tuple[str, ...], **kw: object) -> Preset:
    # the quiet switches pass too (a user's own value wins), unless a pattern passes them
    quiet = tuple(k for k in kw.get("default_env", {})  # type: ignore[attr-defined]
                  if not any(k == e or (e.endswith("*") and k.startswith(e[:-1])) for e in env))
    return Preset(name, pass_env=(*env, *quiet, *NET_ENV), install=INSTALL.get(name, ""),
                  **kw)  # type: ignore[arg-type]


# One table. Installs in the real home that ~/.local/bin links into are mounted read-only
# (a missing one is skipped); everything the agent writes stays in the session's copy-on-write
# agent home; only `keep` (its login) is carried back to the shared one: log in once, inside.
# ~/.claude.json also holds MCP server commands: only these keys of it are carried back.
CLAUDE_JSON_KEYS = (
    "oauthAccount", "userID", "primaryApiKey", "customApiKeyResponses", "hasCompletedOnboarding",
    "lastOnboardingVersion", "theme", "firstStartTime",
)
# Login files that are JSON carry back only their data keys (tokens, expiry, account), never a
# key that picks an endpoint or runs code; a key a newer version adds stays in the session
# until it is reviewed here (security.md, "The agent home").
CODEX_AUTH_KEYS = ("OPENAI_API_KEY", "tokens", "last_refresh", "auth_mode")
GOOGLE_OAUTH_KEYS = ("access_token", "refresh_token", "scope", "token_type", "id_token",
                     "expiry_date")
# qwen's oauth_creds.json also has resource_url: the API endpoint every later qwen session
# sends its prompts and token to; it stays in the session that wrote it.
QWEN_OAUTH_KEYS = ("access_token", "refresh_token", "token_type", "expiry_date", "id_token")
CURSOR_AUTH_KEYS = ("accessToken", "refreshToken", "apiKey")
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _p("claude",
           ("ANTHROPIC_*", "CLAUDE_CODE_*", "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING",
            "DISABLE_NON_ESSENTIAL_MODEL_CALLS", "MAX_THINKING_TOKENS", "MAX_MCP_OUTPUT_TOKENS",
            "MCP_TIMEOUT", "MCP_TOOL_TIMEOUT", "BASH_DEFAULT_TIMEOUT_MS", "BASH_MAX_TIMEOUT_MS",
            "BASH_MAX_OUTPUT_LENGTH", "CLOUD_ML_REGION", "VERTEX_REGION_*", "AWS_REGION"),
           # the host's install is read-only inside: update it outside the sandbox
           # IS_SANDBOX: Claude Code accepts --dangerously-skip-permissions as root only then
           set_env={"DISABLE_AUTOUPDATER": "1", "IS_SANDBOX": "1"},
           default_env={"DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
                        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
           mounts=(".local/share/claude",),
           project=(".claude/", ".mcp.json", "CLAUDE.md", "CLAUDE.local.md"),
           home=(".claude/", ".claude.json"),
           keep=(".claude/.credentials.json",), keep_json={".claude.json": CLAUDE_JSON_KEYS},
           allow_hosts=("api.anthropic.com", "statsig.anthropic.com", "console.anthropic.com",
                        "claude.ai"),
           doc="Claude Code"),
        _p("codex", ("OPENAI_*", "CODEX_*", "AZURE_OPENAI_*"),
           allow_hosts=("api.openai.com", "auth.openai.com", "chatgpt.com"),
           # git agent is the sandbox: every codex sandbox mode but danger-full-access needs
           # new user namespaces, which git agent's sandbox refuses (writes and commands would
           # all fail). A later -c or --sandbox on the command line still wins.
           args=("-c", 'sandbox_mode="danger-full-access"', "-c", "analytics.enabled=false",
                 "-c", "check_for_update_on_startup=false", "-c", "features.plugins=false"),
           project=(".codex/", "AGENTS.md", "AGENTS.override.md"),
           home=(".codex/",), keep_json={".codex/auth.json": CODEX_AUTH_KEYS},
           doc="OpenAI Codex CLI (login needs --net host)"),
        _p("gemini",
           ("GEMINI_*", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
            "GOOGLE_GENAI_*", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GEMINI_BASE_URL",
            "GOOGLE_VERTEX_BASE_URL", "GOOGLE_CLOUD_QUOTA_PROJECT"),
           # no browser inside: the login prints a URL and asks for the code
           set_env={"NO_BROWSER": "true"},
           default_env={"GEMINI_TELEMETRY_ENABLED": "false"},
           allow_hosts=("generativelanguage.googleapis.com", "cloudcode-pa.googleapis.com",
                        "oauth2.googleapis.com", "accounts.google.com"),
           project=(".gemini/", "GEMINI.md"),
           home=(".gemini/",),
           keep_json={".gemini/oauth_creds.json": GOOGLE_OAUTH_KEYS,
                      ".gemini/google_accounts.json": ("active", "old")},
           doc="Gemini CLI"),
        _p("aider",
           ("AIDER_*", "OPENAI_API_KEY", "OPENAI_API_BASE", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
            "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY", "GROQ_API_KEY", "MISTRAL_API_KEY",
            "XAI_API_KEY", "COHERE_API_KEY", "OLLAMA_API_BASE", "AZURE_API_KEY",
            "AZURE_API_BASE", "AZURE_API_VERSION"),
           # its update check (PyPI), analytics and litellm's model price list (GitHub)
           default_env={"AIDER_CHECK_UPDATE": "false", "AIDER_ANALYTICS": "false",
                        "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
           mounts=(".local/share/uv/tools/aider-chat", ".local/share/uv/python",
                   ".local/share/pipx/venvs/aider-chat"),
           project=(".aider.conf.yml", ".aider.model.settings.yml",
                    ".aider.model.metadata.json"),
           home=(".aider/", ".aider.conf.yml"), doc="aider"),
        _p("opencode",
           ("OPENCODE_*", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY",
            "GOOGLE_GENERATIVE_AI_API_KEY", "OPENROUTER_API_KEY", "GROQ_API_KEY", "XAI_API_KEY",
            "DEEPSEEK_API_KEY"),
           set_env={"OPENCODE_DISABLE_AUTOUPDATE": "1"},
           # its default plugins, LSP servers and model list would come from the internet
           default_env={"OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
                        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1"},
           mounts=(".opencode/bin",),
           project=("opencode.json", "opencode.jsonc", ".opencode/", "AGENTS.md"),
           home=(".config/opencode/", ".local/share/opencode/", ".local/state/opencode/",
                 ".cache/opencode/"),
           # nothing carried back: its auth.json maps each provider to credentials, and a
           # "wellknown" entry there sets environment variables (NODE_OPTIONS) and fetches a
           # remote config; log in per session, or pass the API key (security.md)
           doc="opencode"),
        _p("goose",
           ("GOOSE_*", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_HOST", "GOOGLE_API_KEY",
            "OPENROUTER_API_KEY", "GROQ_API_KEY", "DATABRICKS_HOST", "DATABRICKS_TOKEN",
            "OLLAMA_HOST", "AZURE_OPENAI_*"),
           # no keyring daemon inside: keep secrets in ~/.config/goose/secrets.yaml
           set_env={"GOOSE_DISABLE_KEYRING": "1"},
           project=(".goosehints", ".goose/", "AGENTS.md"),
           home=(".config/goose/", ".local/share/goose/", ".local/state/goose/"),
           keep=(".config/goose/secrets.yaml",), doc="goose"),
        _p("cursor-agent", ("CURSOR_API_KEY",), mounts=(".local/share/cursor-agent",),
           project=(".cursor/", ".cursorrules", "AGENTS.md"),
           home=(".cursor/", ".config/cursor/"),
           keep_json={".config/cursor/auth.json": CURSOR_AUTH_KEYS},
           doc="Cursor CLI"),
        _p("amp", ("AMP_API_KEY", "AMP_URL", "AMP_SETTINGS_FILE"),
           project=("AGENT.md", "AGENTS.md", ".amp/"),
           home=(".config/amp/", ".local/share/amp/", ".cache/amp/"),
           keep=(".local/share/amp/secrets.json",), doc="Amp"),
        _p("qwen", ("QWEN_*", "DASHSCOPE_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                    "OPENAI_MODEL"),
           default_env={"QWEN_USAGE_STATISTICS_ENABLED": "false"},  # its RUM usage reports
           project=(".qwen/", "QWEN.md"),
           home=(".qwen/",), keep_json={".qwen/oauth_creds.json": QWEN_OAUTH_KEYS},
           doc="Qwen Code"),
        _p("crush",
           ("CRUSH_*", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY",
            "OPENROUTER_API_KEY", "GROQ_API_KEY", "CEREBRAS_API_KEY", "VERTEXAI_PROJECT",
            "VERTEXAI_LOCATION", "AZURE_OPENAI_API_ENDPOINT", "AZURE_OPENAI_API_KEY",
            "AZURE_OPENAI_API_VERSION"),
           project=("crush.json", ".crush.json", ".crush/", "CRUSH.md"),
           home=(".config/crush/", ".local/share/crush/"), doc="Crush"),
    )
}

NONE = "none"  # --preset none: no preset, whatever the command
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def builtin(name: str) -> Preset | None:
    """The built-in preset for a command name (its name or an alias)."""
    if name in PRESETS:
        return PRESETS[name]
    return next((p for p in PRESETS.values() if name in p.aliases), None)


def configured_names(cfg: GitConfig) -> list[str]:
    """Preset names that git config says something about (agent.preset.<name>.<var>)."""
    names: list[str] = []
    for e in cfg.with_prefix("agent.preset."):
        name, dot, _ = e.key[len("agent.preset."):].rpartition(".")
        if dot and name and name not in names:
            names.append(name)
    return names


def expand_env_names(patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Exact names as given; `PREFIX*` becomes every variable set now with that prefix."""
    out: list[str] = []
    for pat in patterns:
        names = sorted(k for k in os.environ if k.startswith(pat[:-1])) if pat.endswith("*") \
            else [pat]
        out += [n for n in names if n not in out]
    return out


def check_env_pattern(pattern: str, where: str) -> str:
    """A variable name, or PREFIX* with a non-empty prefix (a bare * would pass everything)."""
    if not _ENV_NAME.fullmatch(pattern.removesuffix("*")):
        raise UsageError(f"{where}: {pattern!r} is not a variable name or PREFIX*")
    return pattern


def resolve(*, command: list[str], name: str | None, cfg: GitConfig) -> Preset:
    """The preset named (--preset), else the one the command's name selects, else agent.preset.

    Git config extends a built-in preset or defines a new one; `none` means no preset.
    """
    given = list(command)
    word = given[0] if given else ""
    by_command = os.path.basename(word)
    known = configured_names(cfg)
    if name:
        key, where = name, "--preset"
    elif by_command and (builtin(by_command) or by_command in known):
        key, where = by_command, ""
    else:
        key, where = cfg.get_str("agent.preset") or "", "agent.preset"
    if not key or key == NONE:
        return Preset(NONE, command=tuple(given), source="none")
    base = builtin(key)
    if base is None and key not in known:
        choices = ", ".join(sorted({*PRESETS, *known, NONE}))
        raise UsageError(f"{where}: unknown preset {key!r}; known: {choices}")

    prefix = f"agent.preset.{key}."
    for e in cfg.with_prefix(prefix):
        var = e.key[len(prefix):]
        if "." not in var and var not in VARS:
            raise UsageError(f"{prefix}{var} ({e.origin}): unknown setting; a preset knows "
                             f"{', '.join(VARS.values())}")
    argv = tuple(given)
    cmd_text = cfg.get_str(prefix + "command")
    if cmd_text and word == key:  # `git agent run NAME ARGS` runs the configured command
        try:
            words = shlex.split(cmd_text)
        except ValueError as e:
            raise UsageError(f"{prefix}command: {e}") from None
        if not words:
            raise UsageError(f"{prefix}command is empty")
        argv = (*words, *given[1:])
        if base is None:  # a user preset running a known agent gets that agent's needs
            base = builtin(os.path.basename(words[0]))
    if base is not None and base.args and argv and \
            os.path.basename(argv[0]) in (base.name, *base.aliases):
        argv = (argv[0], *base.args, *argv[1:])
    base = base.replace(name=key) if base else Preset(key, source="git config")

    extra_env = [check_env_pattern(v, prefix + "passEnv") for v in cfg.get_all(prefix + "passEnv")]
    set_env = dict(base.set_env)
    for kv in cfg.get_all(prefix + "setEnv"):
        k, sep, v = kv.partition("=")
        if not sep or not _ENV_NAME.fullmatch(k):
            raise UsageError(f"{prefix}setEnv: {kv!r} is not NAME=VALUE")
        set_env[k] = v
    mounts = cfg.get_all(prefix + "mount")
    overridden = base.source == "builtin" and any(cfg.with_prefix(prefix))
    return base.replace(
        pass_env=tuple(expand_env_names([*base.pass_env, *extra_env])),
        set_env=set_env,
        mounts=(*base.mounts, *mounts),
        allow_hosts=(*base.allow_hosts, *cfg.get_all(prefix + "allowHost")),  # `!HOST` removes
        command=argv,
        source="builtin + git config" if overridden else base.source,
    )
