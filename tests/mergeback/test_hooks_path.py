"""security.md, "What comes back", rule 3 (risky files are named before they are written): a
change under the hooks dir git uses for this worktree (the repository's own core.hooksPath) is a
risk line in review and apply, whatever the directory is called. git itself is the oracle: its
`rev-parse --git-path hooks` says which dir that is, and its next commit runs what apply wrote."""

from __future__ import annotations

import json
import os

import pytest

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
