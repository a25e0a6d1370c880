"""security.md, "What comes back", rule 3 (risky files are named before they are written): a
change under the hooks dir git uses for this worktree (the repository's own core.hooksPath) is a
risk line in review and apply, whatever the directory is called. git itself is the oracle: its
`rev-parse --git-path hooks` says which dir that is, and its next commit runs what apply wrote.
So is a file that the user's git config includes, or that any other value of it names (a
filter, a textconv, an alias, core.fsmonitor): git runs or reads what apply wrote there."""

from __future__ import annotations

import json
import os

import pytest

from git_agent.mergeback import risks
from tests.mergeback.conftest import Work

HOOK = "printf '#!/bin/sh\\ntouch HOOK_RAN\\n' > tools/hooks/pre-commit"


def _git_hooks_dir(work: Work) -> str:
    """The hooks dir git would run hooks from, as git says it (realpath)."""
    out = work.git("rev-parse", "--git-path", "hooks").rstrip("\n")
    return os.path.realpath(os.path.join(work.root, out))


@pytest.mark.parametrize("how", ["relative", "absolute", "through a symlink"])
def test_risky_files_are_named_before_they_are_written_hooks_under_core_hooks_path(
        work: Work, how: str) -> None:
    work.sh("mkdir -p tools/hooks && printf '#!/bin/sh\\nexit 0\\n' > tools/hooks/pre-commit && "
            "chmod +x tools/hooks/pre-commit && ln -s tools/hooks hooklink")
    value = {"relative": "tools/hooks", "absolute": f"{work.root}/tools/hooks",
             "through a symlink": "hooklink"}[how]
    work.git("config", "core.hooksPath", value)  # the user's own config, not the branch's
    work.git("add", "-A")
    work.git("commit", "-qm", "hooks")
    work.run(f"{HOOK} && echo 'helper' > tools/hooks/lib.sh && echo more >> README.md && "
             "mkdir -p hooks && echo x > hooks/pre-commit")  # a dir git does not use: plain
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    hooks = _git_hooks_dir(work)
    flagged = {f["path"] for f in files
               if any("core.hooksPath" in r for r in f["risks"])}
    # git as the oracle: exactly the changed files under the dir git runs hooks from
    assert flagged == {f["path"] for f in files
                       if os.path.realpath(work.root / f["path"]).startswith(hooks + "/")}
    assert flagged == {"tools/hooks/pre-commit", "tools/hooks/lib.sh"}
    out = work.ok("review", "s").stdout.splitlines()
    assert "no risky files" not in out
    assert any(line.startswith("  ! tools/hooks/pre-commit: git hooks directory of this "
                               "repository (core.hooksPath)") for line in out)
    before = work.snapshot()
    p = work.agent("apply", "s")  # no terminal, no --yes: named and refused
    assert p.returncode != 0
    assert any(line.startswith("  ! tools/hooks/lib.sh: git hooks directory") for line in
               p.stderr.splitlines())
    assert work.snapshot() == before
    p = work.ok("apply", "--yes", "s")
    assert "about to write 2 risky files:" in p.stderr
    work.git("commit", "-qam", "user's next commit")  # git runs what apply wrote
    assert (work.root / "HOOK_RAN").exists()


def test_the_default_hooks_dir_is_never_part_of_a_session(work: Work) -> None:
    """Without core.hooksPath, git's hooks dir is .git/hooks: the agent's write there stays in
    the session's own .git, and nothing under a directory named hooks is flagged as such."""
    work.run("mkdir -p .git/hooks hooks && printf '#!/bin/sh\\ntouch HOOK_RAN\\n' > "
             ".git/hooks/pre-commit && chmod +x .git/hooks/pre-commit && echo x > hooks/a")
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    assert [(f["path"], f["risks"]) for f in files] == [("hooks/a", [])]
    work.ok("apply", "s")
    work.git("commit", "-qam", "next", "--allow-empty")
    assert not (work.root / "HOOK_RAN").exists()


def test_risky_files_are_named_before_they_are_written_config_files_your_config_includes(
        work: Work) -> None:
    """security.md, "What comes back", rule 3: a worktree file that the user's git config
    includes (include.path) is config; git is the oracle that it runs what the file says."""
    work.sh("mkdir -p tools && printf '[alias]\\n\\tst = status\\n' > tools/git.cfg")
    work.git("config", "include.path", "../tools/git.cfg")  # relative to .git/config
    work.git("add", "-A")
    work.git("commit", "-qm", "shared git settings")
    work.run("printf '[core]\\n\\tfsmonitor = \"touch FSMONITOR_RAN; false\"\\n' >> "
             "tools/git.cfg && echo more >> README.md")
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    flagged = {f["path"] for f in files if any("include.path" in r for r in f["risks"])}
    assert flagged == {"tools/git.cfg"}
    before = work.snapshot()
    p = work.agent("apply", "s")  # no terminal, no --yes: named and refused
    assert p.returncode != 0 and "tools/git.cfg: a git config file your" in p.stderr
    assert work.snapshot() == before
    work.ok("apply", "--yes", "s")
    work.git("status", "--porcelain")  # git reads what apply wrote as config
    assert (work.root / "FSMONITOR_RAN").exists()


PROGRAMS = {  # key -> (program of the worktree it names, value, marker its rewrite leaves)
    "filter.cl.clean": ("tools/clean.sh", "tools/clean.sh", "CLEAN_RAN"),
    "diff.conv.textconv": ("tools/textconv.sh", "tools/textconv.sh", "TEXTCONV_RAN"),
    "alias.x": ("tools/x.sh", "!tools/x.sh --flag", "ALIAS_RAN"),
    "core.fsmonitor": ("tools/fsmonitor.sh", "tools/fsmonitor.sh", "FSMONITOR_RAN"),
}


def _put(path: str, body: str) -> str:
    """Shell that writes an executable script (body without single quotes) at path."""
    return f"printf '#!/bin/sh\\n%s\\n' '{body}' > {path} && chmod +x {path}"


def test_risky_files_are_named_before_they_are_written_programs_your_config_names(
        work: Work) -> None:
    """security.md, "What comes back", rule 3: a worktree file that a value of the user's git
    config names (whatever the key: a filter, a textconv, a `!` alias, core.fsmonitor) is a
    risk line with the key named; git is the oracle that it runs what apply wrote."""
    body = {"filter.cl.clean": "cat", "diff.conv.textconv": 'cat "$1"'}
    work.sh(" && ".join(["mkdir -p tools"] + [_put(path, body.get(key, "exit 1"))
                                              for key, (path, _, _) in PROGRAMS.items()])
            + " && echo '*.txt diff=conv filter=cl' > .gitattributes && echo hi > a.txt")
    work.git("add", "-A")
    work.git("commit", "-qm", "tools")
    for key, (_, value, _) in PROGRAMS.items():
        work.git("config", key, value)  # the user's own config, not the branch's
    work.run(" && ".join(_put(path, f"touch {marker}; " + body.get(key, "exit 1"))
                         for key, (path, _, marker) in PROGRAMS.items())
             + " && echo more >> README.md")
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    named = {f["path"]: [r for r in f["risks"] if "your git config names" in r] for f in files}
    assert {p: r for p, r in named.items() if r} == {
        path: [f"a program or file your git config names ({key}): git runs or reads it"]
        for key, (path, _, _) in PROGRAMS.items()}
    assert "no risky files" not in work.ok("review", "s").stdout
    before = work.snapshot()
    p = work.agent("apply", "s")  # no terminal, no --yes: named and refused
    assert p.returncode != 0
    assert "tools/clean.sh: a program or file your git config names (filter.cl.clean)" in p.stderr
    assert work.snapshot() == before
    assert not any((work.root / m).exists() for _, _, m in PROGRAMS.values())
    work.ok("apply", "--yes", "s")
    work.sh("echo more >> a.txt")
    work.git("status", "--porcelain")  # core.fsmonitor, the clean filter
    work.git("diff")  # the textconv
    work.actor.run(["git", "x"], cwd=work.root, check=False)  # the alias
    assert {m for _, _, m in PROGRAMS.values() if (work.root / m).exists()} == {
        m for _, _, m in PROGRAMS.values()}


def test_config_values_name_paths_of_the_worktree_and_only_those(work: Work) -> None:
    """The edge of the rule: every value of the user's config is taken as a path, whatever the
    key (user.name = README.md flags README.md: a false positive only adds a risk line); a
    word of a command names a file, not what is under a directory; "." (the worktree itself),
    paths outside the worktree, under .git, or merely alike are not named."""
    work.sh("mkdir -p tools other/tools && echo x > tools/x.sh && echo y > other/tools/x.sh")
    work.git("add", "-A")
    work.git("commit", "-qm", "more")
    work.git("config", "user.name", "README.md")
    work.git("config", "branch.main.remote", ".")
    work.git("config", "alias.lg", "!git log -- docs ~/tools/x.sh")
    work.git("config", "core.fsmonitor", ".git/fsmonitor.sh")
    work.git("config", "diff.x.textconv", "/usr/bin/cat tools/x.sh")
    work.run("echo more >> README.md && echo more >> docs/c.md && echo m >> docs/guide/a.md && "
             "echo m >> tools/x.sh && echo m >> other/tools/x.sh && echo m > tools/x.sh.bak")
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    named = {f["path"]: [r for r in f["risks"] if "your git config names" in r] for f in files}
    assert {p: r for p, r in named.items() if r} == {
        "README.md": ["a program or file your git config names (user.name): git runs or "
                      "reads it"],
        "tools/x.sh": ["a program or file your git config names (diff.x.textconv): git runs "
                       "or reads it"],
    }


def test_risky_files_are_named_before_they_are_written_a_config_file_your_config_would_include(
        work: Work) -> None:
    """An include.path naming a worktree file that does not exist yet (git skips it): the file
    the agent adds there is config all the same (git resolves the path from the including
    file's directory); git is the oracle that it reads it once applied."""
    work.git("config", "include.path", "../tools/local.cfg")  # relative to .git/config
    work.run("mkdir -p tools && printf '[core]\\n\\tfsmonitor = \"touch FSMONITOR_RAN; false\"\\n'"
             " > tools/local.cfg")
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    assert [(f["path"], [r for r in f["risks"] if "include.path" in r]) for f in files] == [
        ("tools/local.cfg", [risks.CONFIG_INCLUDED])]
    before = work.snapshot()
    assert work.agent("apply", "s").returncode != 0
    assert work.snapshot() == before
    work.ok("apply", "--yes", "s")
    work.git("status", "--porcelain")
    assert (work.root / "FSMONITOR_RAN").exists()
