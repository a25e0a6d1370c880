"""security.md, "What comes back", rule 3 (risky files are named before they are written), for
what a path's text alone does not tell: a chain of symlinks that leaves the repository (the
kernel is the oracle: where it resolves each link after apply), a worktree file that git runs
because a hook of .git/hooks links to it (git is the oracle: its next commit runs it), and the
JS/TS config files that tools load as code."""

from __future__ import annotations

import errno
import json
import os

import pytest

from tests.mergeback.conftest import Work


def _risks(work: Work) -> dict[str, list[str]]:
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    return {f["path"]: f["risks"] for f in files}


def _leaves(work: Work, rel: str) -> bool:
    """Does the kernel resolve the link at rel (in the worktree) out of it, into .git, or
    never (a loop)?"""
    full = os.path.join(work.root, rel)
    try:
        os.stat(full)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return True
    real = os.path.realpath(full)
    root = os.path.realpath(work.root)
    inside = real == root or real.startswith(root + "/")
    return not inside or real == root + "/.git" or real.startswith(root + "/.git/")


def test_risky_files_are_named_before_they_are_written_a_chain_of_links_out_of_the_repository(
        work: Work) -> None:
    home = work.actor.home
    (home / ".ssh").mkdir(exist_ok=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY\n")
    work.actor.own(home / ".ssh")
    work.sh("ln -s .. mine && echo mine >> .git/info/exclude")  # your own untracked link
    work.run("ln -s . a && ln -s a/.. u && ln -s u/.. v && ln -s u/home/.ssh/id_ed25519 k && "
             "ln -s mine/home/.ssh w && ln -s l2 l1 && ln -s l1 l2 && ln -s a/src/app.py in && "
             "ln -s a/.git/config g && mkdir -p d && ln -s ../a/docs d/doc && "
             "ln -s guide/deep docs/g2 && ln -s ../c.md docs/guide/up")
    found = _risks(work)
    links = sorted(found)
    assert links == ["a", "d/doc", "docs/g2", "docs/guide/up", "g", "in", "k", "l1", "l2", "u",
                     "v", "w"]
    out = work.ok("review", "s").stdout
    assert "no risky files" not in out
    before = work.snapshot()
    p = work.agent("apply", "s")  # no terminal, no --yes: named and refused
    assert p.returncode != 0 and "symlink" in p.stderr
    assert work.snapshot() == before
    work.ok("apply", "--yes", "s")
    assert (work.root / "k").read_text() == "PRIVATE-KEY\n"  # what the chain really reaches
    # the kernel is the oracle: flagged exactly when it resolves the link out of the worktree,
    # or to a directory above the link (a `..` through it then climbs past where it reads:
    # a later link through this one would lead out, like u through a)
    flagged = {p for p, r in found.items() if any(x.startswith("symlink") for x in r)}
    assert flagged == {p for p in links if _leaves(work, p) or _climbs(work, p)}
    assert flagged == {"a", "d/doc", "g", "k", "l1", "l2", "u", "v", "w"}
    assert [r for r in found["a"] if "above it" in r]


def _climbs(work: Work, rel: str) -> bool:
    """Does the kernel resolve the link at rel to a directory shallower than the link?"""
    full = os.path.join(work.root, rel)
    real = os.path.relpath(os.path.realpath(full), os.path.realpath(work.root))
    depth = 0 if real == "." else real.count("/") + 1
    return os.path.isdir(full) and depth < rel.count("/") + 1


@pytest.mark.parametrize("how", ["a hook linked", "the hooks dir linked",
                                 "core.hooksPath outside, a hook linked"])
def test_risky_files_are_named_before_they_are_written_hooks_linked_into_the_worktree(
        work: Work, how: str) -> None:
    work.sh("mkdir -p tools/hooks && printf '#!/bin/sh\\nexit 0\\n' > tools/lint.sh && "
            "cp tools/lint.sh tools/hooks/pre-commit && chmod +x tools/lint.sh "
            "tools/hooks/pre-commit && echo x > tools/other.sh && git add -A && "
            "git commit -qm tools")
    hook = "tools/hooks/pre-commit" if how == "the hooks dir linked" else "tools/lint.sh"
    work.run(f"printf '#!/bin/sh\\ntouch HOOK_RAN\\n' > {hook} && echo y > tools/other.sh")
    assert _risks(work)[hook] == []  # no hook links there yet: a plain edit (and kept so)
    # the links made after the session's assessment was kept: it is judged again
    if how == "a hook linked":
        work.sh("ln -s ../../tools/lint.sh .git/hooks/pre-commit")
    elif how == "the hooks dir linked":
        work.sh("rm -rf .git/hooks && ln -s ../tools/hooks .git/hooks")
    else:
        mine = work.actor.home / "myhooks"
        work.sh(f"mkdir -p {mine} && ln -s {work.root}/tools/lint.sh {mine}/pre-commit")
        work.git("config", "core.hooksPath", str(mine))
    found = _risks(work)
    assert any("git hooks" in r for r in found[hook]), found
    assert found["tools/other.sh"] == []
    assert "no risky files" not in work.ok("review", "s").stdout
    p = work.agent("apply", "s")
    assert p.returncode != 0 and hook in p.stderr
    work.ok("apply", "--yes", "s")
    work.git("commit", "-qam", "the user's next commit")  # git runs what apply wrote
    assert (work.root / "HOOK_RAN").exists()


@pytest.mark.parametrize("how", ["a tracked link retargeted", "a dir link on the way"])
def test_risky_files_are_named_before_they_are_written_hooks_through_a_chain_of_links(
        work: Work, how: str) -> None:
    """.git/hooks/pre-commit -> ../../hooks/pre-commit -> ../tools/lint.sh (tools -> scripts):
    every hop is a hook, not only the chain's end; the session retargets a hop to another
    executable of yours and rewrites that one."""
    work.sh("mkdir -p scripts other hooks && printf '#!/bin/sh\\nexit 0\\n' > scripts/lint.sh && "
            "cp scripts/lint.sh scripts/fmt.sh && cp scripts/lint.sh other/lint.sh && "
            "chmod +x scripts/*.sh other/lint.sh && ln -s scripts tools && "
            "ln -s ../tools/lint.sh hooks/pre-commit && git add -A && git commit -qm tools && "
            "ln -s ../../hooks/pre-commit .git/hooks/pre-commit")
    if how == "a tracked link retargeted":
        hop, planted = "hooks/pre-commit", "scripts/fmt.sh"
        retarget = "ln -sfn ../tools/fmt.sh hooks/pre-commit"
    else:
        hop, planted = "tools", "other/lint.sh"
        retarget = "rm tools && ln -s other tools"
    work.run(f"printf '#!/bin/sh\\ntouch HOOK_RAN\\n' > {planted} && {retarget}")
    found = _risks(work)
    assert any("git hooks" in r for r in found[hop]), found
    assert "no risky files" not in work.ok("review", "s").stdout
    p = work.agent("apply", "s")
    assert p.returncode != 0 and hop in p.stderr
    work.ok("apply", "--yes", "s")
    work.git("commit", "-qam", "the user's next commit")  # git runs what apply wrote
    assert (work.root / "HOOK_RAN").exists()


def test_risky_files_are_named_before_they_are_written_js_config_modules(work: Work) -> None:
    configs = ["eslint.config.js", "vite.config.ts", "web/webpack.config.js", "jest.config.mjs",
               "babel.config.cjs", ".prettierrc.js", "pkg/.eslintrc.cjs", "vitest.config.mts"]
    plain = ["app.js", "config.js", "src/rc.js", "lib/config.json"]
    work.run("mkdir -p web pkg src lib && for f in " + " ".join(configs + plain) +
             "; do echo 'export default {}' > $f; done")
    found = _risks(work)
    assert {p for p, r in found.items() if any("config module" in x for x in r)} == set(configs)
    assert all(found[p] == [] for p in plain)


def test_risky_files_are_named_before_they_are_written_links_judged_through_your_worktree(
        work: Work) -> None:
    """A link is judged through what your worktree will be once this apply is done: what it
    writes, and for every other path your worktree as it is now. Your submodule is a directory
    there (not a file: a `..` through a link to it climbs), and a path this apply does not
    write (apply -- PATHS) is still yours, whatever the branch holds. The kernel is the
    oracle: after --yes each flagged link really climbs or leads out."""
    home = work.actor.home
    (home / ".ssh").mkdir(exist_ok=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY\n")
    work.actor.own(home / ".ssh")
    work.sh("git init -q -b main ../lib && cd ../lib && echo l > l && git add l && "
            "git commit -qm l && cd - >/dev/null && "
            "git -c protocol.file.allow=always submodule -q add ../lib m && "
            "mkdir -p ../home/lib2 && ln -s ../home/lib2 vendor && git add vendor && "
            "git commit -qm 'sub, vendor'")
    work.run("mkdir -p sub && ln -s ../m sub/x && rm vendor && mkdir vendor && "
             "echo v > vendor/f && ln -s vendor/../.ssh/id_ed25519 k")
    found = _risks(work)
    assert [r for r in found["sub/x"] if "symlink to a directory above it" in r]
    assert not [r for r in found["k"] if r.startswith("symlink")]  # vendor/ a directory: inside
    snap = work.snapshot()
    p = work.agent("apply", "s", "--", "k")  # vendor stays your link: k leads out
    assert p.returncode != 0 and "k: symlink pointing outside the repository" in p.stdout + p.stderr
    assert work.snapshot() == snap
    p = work.agent("apply", "--commit", "s", "--", "k")  # the commit lands k alone too
    assert p.returncode != 0 and "k: symlink pointing outside the repository" in p.stdout + p.stderr
    assert work.snapshot() == snap
    work.ok("apply", "--yes", "s", "--", "k", "sub/x")
    assert (work.root / "k").read_text() == "PRIVATE-KEY\n"  # what the kernel reaches
    assert _climbs(work, "sub/x")


def test_risky_files_are_named_before_they_are_written_links_of_each_landed_commit(
        work: Work) -> None:
    """apply --commit judges each landed commit's links through that commit's tree (what a
    checkout of it writes) and your worktree: `a -> .` that a later commit takes away stays
    in your history, a directory above itself. git is the oracle: the landed commit has it."""
    work.run("ln -s . a")
    work.run("rm a && echo x >> README.md")
    assert "a" not in _risks(work)  # the net change has no a
    snap = work.snapshot()
    p = work.agent("apply", "--commit", "s")  # no terminal: asked, refused
    assert p.returncode != 0 and "a: symlink to a directory above it" in p.stdout + p.stderr
    assert work.snapshot() == snap
    work.ok("apply", "--commit", "--yes", "s")
    assert work.git("cat-file", "-p", "HEAD~1:a").strip() == "."
