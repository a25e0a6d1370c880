"""The risk table: which paths can run code or pick programs outside the sandbox once applied,
by kind, each with its one-line reason (risks.py matches paths against it). The agents' rows
come from the presets' project files, so a new preset cannot be left out."""

from __future__ import annotations

from dataclasses import dataclass


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


_JS_CONFIG = "JS/TS config module (eslint, vite, webpack, jest, babel...): code the tool runs"

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
    # JS/TS config files that tools load as modules: a rule by shape, not a list of tools
    Rule("*.config.js", _JS_CONFIG),
    Rule("*.config.cjs", _JS_CONFIG),
    Rule("*.config.mjs", _JS_CONFIG),
    Rule("*.config.ts", _JS_CONFIG),
    Rule("*.config.cts", _JS_CONFIG),
    Rule("*.config.mts", _JS_CONFIG),
    Rule(".*rc.js", _JS_CONFIG),
    Rule(".*rc.cjs", _JS_CONFIG),
    Rule(".*rc.mjs", _JS_CONFIG),
    Rule(".*rc.ts", _JS_CONFIG),
    Rule(".*rc.cts", _JS_CONFIG),
    Rule(".*rc.mts", _JS_CONFIG),
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
