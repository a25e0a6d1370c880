"""Risk rules: which changes can run code or change behaviour outside the sandbox once applied.

The highest is FOREIGN_GIT: a change after which git, run from some directory of the worktree,
would find a repository or config other than the user's (a spelling of .git, .gitmodules, a
directory shaped like a git dir; see foreign.py for the last). Review lists it first and apply
refuses it always."""

from __future__ import annotations

import functools
import json
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from git_agent import gittree, ui

# The highest risk: apply refuses any path with a reason starting so, whatever it is told.
FOREIGN_GIT = "makes git find another repository"


@dataclass(frozen=True)
class Rule:
    """Paths matching `pattern` are flagged with `reason`.

    A pattern without "/" matches a file name in any directory; one with "/" matches the path
    from the worktree root; a trailing "/**" means anything below that directory, at any depth
    when the pattern starts with "**/". Matching ignores case (a case-insensitive checkout or
    tool sees `.VSCode` as `.vscode`).
    """

    pattern: str
    reason: str


# The one table. Order is irrelevant; every matching reason is reported once.
RULES: tuple[Rule, ...] = (
    # git itself, run later by the host's git (every spelling of .git, and .gitmodules
    # anywhere, are FOREIGN_GIT: foreign_name below)
    Rule(".gitattributes", "git attributes: pick filter, diff and merge drivers that run commands"),
    Rule(".gitmodules", "submodules: URLs git clones and fetches from"),
    Rule(".lfsconfig", "git-lfs config: where large files are fetched from and pushed to"),
    Rule(".gitconfig", "a git config file tools may include (aliases, hooks, fsmonitor)"),
    # hook managers
    Rule("**/.husky/**", "git hooks (husky): run on commit and push"),
    Rule("**/.githooks/**", "git hooks directory (core.hooksPath): runs on commit and push"),
    Rule(".pre-commit-config.yaml", "pre-commit hooks: run on commit"),
    Rule(".pre-commit-hooks.yaml", "pre-commit hook definitions: run by pre-commit"),
    Rule("lefthook.yml", "git hooks (lefthook): run on commit and push"),
    Rule("lefthook.yaml", "git hooks (lefthook): run on commit and push"),
    Rule(".lefthook.yml", "git hooks (lefthook): run on commit and push"),
    Rule(".lefthook.yaml", "git hooks (lefthook): run on commit and push"),
    Rule("lefthook-local.yml", "git hooks (lefthook): run on commit and push"),
    Rule("**/.lefthook/**", "git hooks (lefthook scripts): run on commit and push"),
    Rule("**/.lefthook-local/**", "git hooks (lefthook scripts): run on commit and push"),
    # shell environment
    Rule(".envrc", "direnv: runs when you cd into the directory"),
    Rule(".env", "environment file: loaded by direnv, dotenv, docker compose"),
    Rule(".env.*", "environment file: loaded by direnv, dotenv, docker compose"),
    Rule("mise.toml", "mise config: runs hooks, tasks and env scripts"),
    Rule(".mise.toml", "mise config: runs hooks, tasks and env scripts"),
    Rule("**/.mise/**", "mise config: runs hooks, tasks and env scripts"),
    Rule("mise.local.toml", "mise config: runs hooks, tasks and env scripts"),
    Rule(".mise.local.toml", "mise config: runs hooks, tasks and env scripts"),
    Rule("mise.*.toml", "mise config: runs hooks, tasks and env scripts"),
    Rule(".mise.*.toml", "mise config: runs hooks, tasks and env scripts"),
    Rule("**/.config/mise/**", "mise config: runs hooks, tasks and env scripts"),
    Rule(".config/mise.toml", "mise config: runs hooks, tasks and env scripts"),
    Rule("mise/config.toml", "mise config: runs hooks, tasks and env scripts"),
    Rule("**/mise/config.toml", "mise config: runs hooks, tasks and env scripts"),
    Rule(".tool-versions", "asdf/mise tool versions: picks the interpreters and tools you run"),
    Rule(".python-version", "interpreter version file: picks the Python that pyenv/uv run"),
    Rule(".node-version", "interpreter version file: picks the node that version managers run"),
    Rule(".nvmrc", "interpreter version file: picks the node that nvm runs"),
    Rule(".ruby-version", "interpreter version file: picks the Ruby that version managers run"),
    # shell start-up files: a dotfiles repository is installed into your home
    Rule(".bashrc", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".bash_profile", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".bash_login", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".bash_logout", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".profile", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".zshrc", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".zshenv", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".zprofile", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".zlogin", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".zlogout", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".kshrc", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".cshrc", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".tcshrc", "shell start-up file: runs in every shell once installed as a dotfile"),
    Rule(".inputrc", "readline start-up file: key bindings that can run commands"),
    Rule(".ssh/config", "ssh config: ProxyCommand, LocalCommand run once installed"),
    Rule("**/.ssh/config", "ssh config: ProxyCommand, LocalCommand run once installed"),
    Rule(".tmux.conf", "tmux config: run-shell and key bindings run commands once installed"),
    Rule("**/.config/fish/**", "fish start-up files: run in every shell once installed"),
    # CI
    Rule("**/.github/workflows/**", "CI workflow: runs on push with the repository's secrets"),
    Rule("**/.github/actions/**", "CI action: runs in workflows with the repository's secrets"),
    Rule("**/.forgejo/workflows/**", "CI workflow: runs on push with the repository's secrets"),
    Rule("**/.gitea/workflows/**", "CI workflow: runs on push with the repository's secrets"),
    Rule(".gitlab-ci.yml", "CI definition (GitLab): runs on push"),
    Rule("**/.gitlab/**", "GitLab CI includes and templates"),
    Rule("**/.circleci/**", "CI definition (CircleCI): runs on push"),
    Rule(".travis.yml", "CI definition (Travis): runs on push"),
    Rule("Jenkinsfile", "CI pipeline (Jenkins): runs on push"),
    Rule("azure-pipelines.yml", "CI pipeline (Azure): runs on push"),
    Rule("bitbucket-pipelines.yml", "CI pipeline (Bitbucket): runs on push"),
    Rule(".drone.yml", "CI pipeline (Drone): runs on push"),
    Rule("appveyor.yml", "CI pipeline (AppVeyor): runs on push"),
    Rule(".woodpecker.yml", "CI pipeline (Woodpecker): runs on push"),
    Rule("**/.woodpecker/**", "CI pipeline (Woodpecker): runs on push"),
    Rule("**/.buildkite/**", "CI pipeline (Buildkite): runs on push"),
    # editors and dev containers
    Rule("**/.vscode/**", "VS Code settings/tasks/launch: can run commands when opened"),
    Rule("*.code-workspace", "VS Code workspace: settings and tasks that run commands"),
    Rule("**/.idea/**", "JetBrains project settings: run configurations and tool paths"),
    Rule("**/.devcontainer/**", "dev container: image and lifecycle commands run on open"),
    Rule(".devcontainer.json", "dev container: image and lifecycle commands run on open"),
    Rule(".nvim.lua", "Neovim exrc: runs when the editor opens the directory"),
    Rule(".nvimrc", "Neovim exrc: runs when the editor opens the directory"),
    Rule(".exrc", "vim exrc: runs when the editor opens the directory"),
    Rule(".vimrc", "vim exrc: runs when the editor opens the directory"),
    Rule(".gvimrc", "vim exrc: runs when the editor opens the directory"),
    Rule(".lazy.lua", "lazy.nvim project spec: runs when the editor opens the directory"),
    Rule("**/.zed/**", "Zed settings and tasks: language servers and commands it runs"),
    Rule("**/.helix/**", "Helix workspace config: language servers and commands it runs"),
    Rule(".dir-locals.el", "Emacs directory variables: eval forms run on opening a file here"),
    Rule(".dir-locals-2.el", "Emacs directory variables: eval forms run on opening a file here"),
    Rule("*.sublime-project", "Sublime Text project: build systems that run commands"),
    Rule(".vim/coc-settings.json", "coc.nvim workspace settings: language servers it starts"),
    Rule("**/.vim/coc-settings.json", "coc.nvim workspace settings: language servers it starts"),
    Rule(".gdbinit", "debugger init file: commands gdb runs when started here"),
    Rule(".lldbinit", "debugger init file: commands lldb runs when started here"),
    Rule(".pdbrc", "debugger init file: Python commands pdb runs when started here"),
    # agents: configs that execute, and instructions a later (maybe unsandboxed) agent follows
    Rule("**/.claude/**", "Claude Code settings, hooks and commands: run by the next agent"),
    Rule(".mcp.json", "MCP servers: started by the next agent"),
    Rule("CLAUDE.md", "agent instructions: steer the next agent (it may run commands)"),
    Rule("CLAUDE.local.md", "agent instructions: steer the next agent (it may run commands)"),
    Rule("AGENTS.md", "agent instructions: steer the next agent (it may run commands)"),
    Rule("GEMINI.md", "agent instructions: steer the next agent (it may run commands)"),
    Rule("**/.cursor/**", "Cursor rules and MCP config: steer or start tools"),
    Rule(".cursorrules", "agent instructions: steer the next agent (it may run commands)"),
    Rule(".windsurfrules", "agent instructions: steer the next agent (it may run commands)"),
    Rule("**/.codex/**", "Codex config: steer the next agent or start tools"),
    Rule("**/.gemini/**", "Gemini CLI settings: steer the next agent or start tools"),
    Rule("**/.continue/**", "Continue config: steer the next agent or start tools"),
    Rule(".aider.conf.yml", "aider config: can run lint/test commands"),
    Rule(".github/copilot-instructions.md", "agent instructions: steer the next agent"),
    # build, package and test machinery
    Rule("Makefile", "build script: runs on make"),
    Rule("makefile", "build script: runs on make"),
    Rule("GNUmakefile", "build script: runs on make"),
    Rule("*.mk", "build script: included by make"),
    Rule("CMakeLists.txt", "build script: runs on cmake"),
    Rule("*.cmake", "build script: included by cmake"),
    Rule("meson.build", "build script: runs on meson"),
    Rule("justfile", "task runner recipes (just)"),
    Rule(".justfile", "task runner recipes (just)"),
    Rule("Taskfile.yml", "task runner recipes (Task)"),
    Rule("Taskfile.yaml", "task runner recipes (Task)"),
    Rule("Taskfile.dist.yml", "task runner recipes (Task)"),
    Rule("Taskfile.dist.yaml", "task runner recipes (Task)"),
    Rule("Procfile", "process list: commands foreman/honcho/heroku local run"),
    Rule("Brewfile", "Homebrew bundle: Ruby that brew bundle evaluates, packages it installs"),
    Rule(".bazelrc", "Bazel options: flags, tools and commands of every build"),
    Rule(".bazelversion", "Bazel version: which bazel binary bazelisk downloads and runs"),
    Rule("MODULE.bazel", "Bazel module: dependencies and rules run on build"),
    Rule("WORKSPACE", "Bazel workspace: repository rules run on build"),
    Rule("WORKSPACE.bazel", "Bazel workspace: repository rules run on build"),
    Rule("composer.json", "Composer manifest: scripts and plugins run on install"),
    Rule("composer.lock", "PHP dependencies: installs run their plugins"),
    Rule("bunfig.toml", "Bun config: preload scripts, registry and install behaviour"),
    Rule("deno.json", "Deno config: tasks and import maps"),
    Rule("deno.jsonc", "Deno config: tasks and import maps"),
    Rule("pnpm-workspace.yaml", "pnpm workspace config: packages and which may run build scripts"),
    Rule("Rakefile", "build script: runs on rake"),
    Rule("setup.py", "Python build script: runs on pip install"),
    Rule("setup.cfg", "Python build config: entry points and build options"),
    Rule("pyproject.toml", "Python build config: build backend and hooks run on pip install"),
    Rule("conftest.py", "pytest plugin: imported by every pytest run"),
    Rule("noxfile.py", "nox sessions: run by nox"),
    Rule("tox.ini", "tox environments: commands run by tox"),
    Rule("pytest.ini", "pytest config: plugins and options of every test run"),
    Rule("sitecustomize.py", "imported by every Python interpreter that sees it"),
    Rule("usercustomize.py", "imported by every Python interpreter that sees it"),
    Rule("*.pth", "Python path file: its import lines run at interpreter start"),
    Rule("requirements*.txt", "Python dependencies: installs run their build scripts"),
    Rule("Pipfile", "Python dependencies: installs run their build scripts"),
    Rule("Pipfile.lock", "Python dependencies: installs run their build scripts"),
    Rule("poetry.lock", "Python dependencies: installs run their build scripts"),
    Rule("uv.lock", "Python dependencies: installs run their build scripts"),
    Rule("package-lock.json", "npm dependencies: installs run their scripts"),
    Rule("npm-shrinkwrap.json", "npm dependencies: installs run their scripts"),
    Rule("yarn.lock", "npm dependencies: installs run their scripts"),
    Rule("pnpm-lock.yaml", "npm dependencies: installs run their scripts"),
    Rule(".npmrc", "npm config: registry, scripts and install behaviour"),
    Rule(".yarnrc", "yarn config: registry and install behaviour"),
    Rule(".yarnrc.yml", "yarn config: plugins and the yarn binary that runs"),
    Rule("**/.yarn/**", "yarn plugins and releases: code yarn runs"),
    Rule(".pnpmfile.cjs", "pnpm hooks: run on install"),
    Rule("build.rs", "Rust build script: runs on cargo build"),
    Rule("Cargo.toml", "Rust manifest: build scripts, proc macros and dependencies"),
    Rule("**/.cargo/**", "cargo config: runners, linkers and aliases"),
    Rule("go.mod", "Go module: dependencies and toolchain downloads"),
    Rule("go.work", "Go workspace: module replacements and toolchain downloads"),
    Rule("rust-toolchain", "Rust toolchain file: picks (or points at) the rustc you run"),
    Rule("rust-toolchain.toml", "Rust toolchain file: picks (or points at) the rustc you run"),
    Rule("build.gradle", "Gradle build script: runs on build"),
    Rule("build.gradle.kts", "Gradle build script: runs on build"),
    Rule("settings.gradle", "Gradle settings: runs on build"),
    Rule("settings.gradle.kts", "Gradle settings: runs on build"),
    Rule("gradlew", "Gradle wrapper: runs on build"),
    Rule("mvnw", "Maven wrapper: downloads and runs Maven on build"),
    Rule("mvnw.cmd", "Maven wrapper: downloads and runs Maven on build"),
    Rule("**/.mvn/**", "Maven project config: wrapper URL, extensions, JVM options of builds"),
    Rule(".bundle/config", "Bundler config: where gems and the Gemfile come from"),
    Rule("**/.bundle/config", "Bundler config: where gems and the Gemfile come from"),
    Rule("**/gradle/wrapper/**", "Gradle wrapper: where the build tool is downloaded from"),
    Rule("pom.xml", "Maven build: plugins run on build"),
    Rule("**/.mvn/**", "Maven config and wrapper: runs on build"),
    Rule("Gemfile", "Ruby dependencies: installs run their build scripts"),
    Rule("*.gemspec", "Ruby gem spec: runs on build and install"),
    Rule("Dockerfile", "container build: commands run on docker build"),
    Rule("Dockerfile.*", "container build: commands run on docker build"),
    Rule("*.dockerfile", "container build: commands run on docker build"),
    Rule("Containerfile", "container build: commands run on build"),
    Rule("docker-compose*.yml", "docker compose: containers, mounts and commands"),
    Rule("docker-compose*.yaml", "docker compose: containers, mounts and commands"),
    Rule("compose.yml", "docker compose: containers, mounts and commands"),
    Rule("compose.yaml", "docker compose: containers, mounts and commands"),
    Rule("Vagrantfile", "Vagrant: Ruby code run by vagrant"),
    Rule("flake.nix", "Nix flake: code nix evaluates and builds"),
    Rule("shell.nix", "Nix shell: code run by nix-shell"),
    Rule("default.nix", "Nix expression: code nix evaluates and builds"),
)

# The agents git agent has presets for: their project configs (settings/presets.py, `project`),
# so that a new preset cannot be left out. A pattern a row above has already is not repeated.
def _preset_rules() -> tuple[Rule, ...]:
    from git_agent.settings.presets import PRESETS

    docs: dict[str, list[str]] = {}
    for preset in PRESETS.values():
        for path in preset.project:
            docs.setdefault(preset_pattern(path), []).append(preset.name)
    have = {r.pattern.lower() for r in RULES}
    return tuple(Rule(p, f"agent config or instructions ({', '.join(d)}): steer the next agent "
                         "or start tools")
                 for p, d in docs.items() if p.lower() not in have)


def preset_pattern(path: str) -> str:
    """A preset's project path as a rule: `DIR/` is everything below DIR at any depth, a name
    matches in any directory."""
    return f"**/{path.rstrip('/')}/**" if path.endswith("/") else path


RULES = RULES + _preset_rules()

# package.json keys whose change makes npm/yarn run different code.
PACKAGE_JSON_KEYS = {
    "scripts": "package.json scripts: npm runs them",
    "dependencies": "package.json dependencies: installs run their scripts",
    "devDependencies": "package.json dependencies: installs run their scripts",
    "optionalDependencies": "package.json dependencies: installs run their scripts",
    "peerDependencies": "package.json dependencies: installs run their scripts",
    "bin": "package.json bin: commands installed on your PATH",
    "workspaces": "package.json workspaces: more packages whose scripts run",
    "packageManager": "package.json packageManager: which package manager binary corepack runs",
    "config": "package.json config: values passed to scripts",
    "overrides": "package.json overrides: replaced dependencies",
    "resolutions": "package.json resolutions: replaced dependencies",
}

SNIFF_BYTES = 8000  # as git: a NUL in the first 8000 bytes means binary


def _match(pattern: str, path: str) -> bool:
    p, s = pattern.lower(), path.lower()
    if p.startswith("**/") and p.endswith("/**"):
        d = p[3:-3]
        parts = s.split("/")[:-1]
        return any(fnmatchcase("/".join(parts[i : i + d.count("/") + 1]), d)
                   for i in range(len(parts)))
    if p.endswith("/**"):
        return s.startswith(p[:-2])
    if "/" in p:
        return fnmatchcase(s, p)
    return fnmatchcase(s.rsplit("/", 1)[-1], p)


def _literal(p: str) -> bool:
    return not any(c in p for c in "*?[")


@functools.cache
def _table() -> tuple[dict[str, list[int]], list[tuple[int, str]], list[tuple[int, str]]]:
    """RULES sorted for speed (apply checks every path): literal file names by name, literal
    `**/DIR/**` rules as "/DIR/", the rest matched one by one."""
    names: dict[str, list[int]] = {}
    dirs: list[tuple[int, str]] = []
    rest: list[tuple[int, str]] = []
    for i, rule in enumerate(RULES):
        p = rule.pattern.lower()
        if "/" not in p and _literal(p):
            names.setdefault(p, []).append(i)
        elif p.startswith("**/") and p.endswith("/**") and _literal(p[3:-3]):
            dirs.append((i, "/" + p[3:-3] + "/"))
        else:
            rest.append((i, rule.pattern))
    return names, dirs, rest


def path_risks(path: str) -> list[str]:
    """Reasons the path itself is sensitive, from the table (whatever its content)."""
    names, dirs, rest = _table()
    low = path.lower()
    parent, _, name = low.rpartition("/")
    above = "/" + parent + "/"
    hits = [*names.get(name, ()), *(i for i, d in dirs if d in above),
            *(i for i, pattern in rest if _match(pattern, path))]
    out: list[str] = []
    for i in sorted(hits):
        if RULES[i].reason not in out:
            out.append(RULES[i].reason)
    return out


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:SNIFF_BYTES]


def symlink_risk(path: str, target: bytes) -> str | None:
    """Why a link at `path` is risky: absolute, pointing outside the worktree or into .git."""
    t = target.decode(errors="replace")
    shown = ui.quote_path(target)
    if t.startswith("/"):
        return f"symlink to an absolute path: {shown}"
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), t))
    if joined == ".." or joined.startswith("../"):
        return f"symlink pointing outside the repository: {shown}"
    if any(gittree.is_dotgit(os.fsencode(c)) for c in joined.split("/")):  # .GIT, git~1 too
        return f"symlink into .git: {shown}"
    return None


def foreign_name(path: bytes) -> str | None:
    """FOREIGN_GIT for a path holding a spelling of .git (a repository or gitfile git would
    follow: .GIT, git~1, NTFS/HFS spellings) or of .gitmodules, at any depth."""
    parts = path.split(b"/")
    if any(gittree.is_dotgit(p) for p in parts):
        return f"{FOREIGN_GIT}: a .git entry (a nested repository or gitfile git follows)"
    if any(gittree.is_dotgitmodules(p) for p in parts):
        return f"{FOREIGN_GIT}: .gitmodules (submodules git clones, fetches and enters)"
    return None


HOOKS = "git hooks directory of this repository (core.hooksPath): runs on commit and push"


def hooks_risk(path: bytes, hooks: Sequence[bytes]) -> str | None:
    """HOOKS for a path under a hooks dir git uses for this worktree (`hooks`: each a path from
    the worktree root, b"" for the root itself), or above one (a file or link there replaces
    the directory). Case is ignored, as in the table."""
    return HOOKS if _at_or_around(path, hooks) else None


CONFIG_INCLUDED = ("a git config file your configuration includes (include.path): git runs "
                   "what it sets (core.fsmonitor, aliases, hooksPath)")


def included_config_risk(path: bytes, files: Sequence[bytes]) -> str | None:
    """CONFIG_INCLUDED for a file of the worktree that the user's git config includes (`files`:
    each a path from the worktree root), or for what replaces a directory above one."""
    return CONFIG_INCLUDED if _at_or_around(path, files) else None


def _at_or_around(path: bytes, places: Sequence[bytes]) -> bool:
    """path is one of places, under one, or above one (b"" is the worktree root itself)."""
    p = path.lower()
    return any(not d or p == d or p.startswith(d + b"/") or d.startswith(p + b"/")
               for d in (x.lower() for x in places))


def package_json_risks(old: bytes | None, new: bytes | None) -> list[str]:
    """Reasons from the keys that differ between two package.json versions (or a parse error)."""

    def load(data: bytes | None) -> dict[str, object]:
        if data is None:
            return {}
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise ValueError("not an object")
        return obj

    try:
        a, b = load(old), load(new)
    except (ValueError, UnicodeDecodeError):
        return ["package.json that does not parse: npm may read it differently"]
    out: list[str] = []
    for key, reason in PACKAGE_JSON_KEYS.items():
        if a.get(key) != b.get(key) and reason not in out:
            out.append(reason)
    return out


def assess(
    *,
    path: str,
    old_mode: int,
    new_mode: int,
    old_data: bytes | None = None,
    new_data: bytes | None = None,
    hooks: Sequence[bytes] = (),
    configs: Sequence[bytes] = (),
) -> list[str]:
    """Every reason this change is risky, most specific first; [] for a plain edit.

    `old_mode`/`new_mode` are git modes (0 when absent); `*_data` the blob contents (a link's
    target for mode 120000), None when absent or not loaded; `hooks` the worktree's hooks dirs
    (view.hooks_dirs); `configs` the files of it that its git config includes
    (view.included_configs).
    """
    out: list[str] = []
    name = path.rsplit("/", 1)[-1]
    foreign = foreign_name(os.fsencode(path)) if new_mode else None
    if foreign:
        out.append(foreign)
    hook = hooks_risk(os.fsencode(path), hooks)
    if hook:
        out.append(hook)
    included = included_config_risk(os.fsencode(path), configs)
    if included:
        out.append(included)
    if new_mode == gittree.LINK and new_data is not None:
        r = symlink_risk(path, new_data)
        if r:
            out.append(r)
    if new_mode == gittree.EXEC and old_mode != gittree.EXEC:
        out.append("becomes executable" if old_mode else "new executable file")
    if new_mode == gittree.GITLINK:
        out.append("submodule commit: code fetched from elsewhere")
    if new_mode in (gittree.BLOB, gittree.EXEC) and new_data is not None and is_binary(new_data):
        out.append("binary file: cannot be reviewed as text")
    if name.lower() == "package.json" and new_mode != gittree.LINK:
        out.extend(r for r in package_json_risks(old_data, new_data) if r not in out)
    out.extend(r for r in path_risks(path) if r not in out)
    return out
