"""What `apply --commit` lands is what review showed and was judged: the landed tree equals
plain apply's, every landed commit passes the other-repository rules and the risk prompt, it
never writes over what your index does not track, and a failure while writing leaves the
worktree as it was. Branches are built by hand (a refs-only session, as fetched or
imported); git is the oracle."""

from __future__ import annotations

import shlex

from tests.mergeback.conftest import Work


def commit(work: Work, parent: str, changes: dict[str, str | None], msg: str,
           mode: str = "100644") -> str:
    """A commit on parent with paths set (None: removed), authored by the agent."""
    lines = ["set -e", 'export GIT_INDEX_FILE="$(git rev-parse --git-dir)/guard-idx"',
             f"git read-tree {parent}"]
    for path, data in changes.items():
        if data is None:
            lines.append(f"git update-index --force-remove -- {shlex.quote(path)}")
        elif mode == "160000" and path.endswith("sub"):
            lines.append(f"git update-index --add --cacheinfo 160000,{data},{shlex.quote(path)}")
        else:
            lines.append(f"o=$(printf %s {shlex.quote(data)} | git hash-object -w --stdin)")
            lines.append(f"git update-index --add --cacheinfo 100644,$o,{shlex.quote(path)}")
    lines.append(f"t=$(git write-tree); rm -f \"$GIT_INDEX_FILE\"; "
                 f"GIT_AUTHOR_NAME=Agent GIT_AUTHOR_EMAIL=a@x git commit-tree $t -p {parent} "
                 f"-m {shlex.quote(msg)}")
    return str(work.actor.run(["sh", "-c", "\n".join(lines)], cwd=work.root,
                              check=True).stdout.strip())


def branch(work: Work, base: str, *steps: dict[str, str | None], mode: str = "100644") -> str:
    """agent/s as a chain of commits on base, the last naming base in its Agent-Base trailer
    (a session known only by its refs)."""
    tip = base
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        tip = commit(work, tip, step, f"step {i}" + (f"\n\nAgent-Base: {base}" if last else ""),
                     mode=mode)
    work.git("update-ref", "refs/heads/agent/s", tip)
    return tip


def test_apply_commit_lands_only_what_review_showed(work: Work) -> None:
    """A chain whose first commit makes auth.py what your branch already has (left out as
    already there) and whose second puts the old version back would revert your committed
    fix, which review (the net diff) never shows: refused, nothing written."""
    work.sh("echo 'insecure v1' > auth.py && git add auth.py && git commit -qm v1")
    old = work.git("rev-parse", "HEAD").strip()
    work.sh("echo 'fixed v2' > auth.py && git commit -qam fix")
    branch(work, old, {"auth.py": "fixed v2\n"},
           {"auth.py": "insecure v1\n", "feature.txt": "feature\n"})
    assert work.review_paths() == ["feature.txt"]
    state, tip = work.index_and_head(), work.git("rev-parse", "agent/s")
    p = work.agent("apply", "--commit", "--yes", "s")
    assert p.returncode == 1 and "auth.py" in p.stderr and "review" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert work.index_and_head() == state and work.git("rev-parse", "agent/s") == tip
    assert (work.root / "auth.py").read_text() == "fixed v2\n"
    assert not (work.root / "feature.txt").exists()
    # what review showed lands (plain apply's result, as commits)
    branch(work, old, {"feature.txt": "feature\n"})
    work.ok("apply", "--commit", "--yes", "s")
    assert work.git("show", "HEAD:auth.py") == "fixed v2\n"
    assert work.git("diff", "--name-only", "HEAD~1", "HEAD") == "feature.txt\n"


GITDIR = {"evil/HEAD": "ref: refs/heads/main\n",
          "evil/config": "[core]\n\tfsmonitor = \"touch ../PWNED; false\"\n",
          "evil/objects/info/x": "", "evil/refs/heads/x": ""}


def test_apply_commit_never_lands_a_commit_that_makes_git_find_another_repository(
        work: Work) -> None:
    """A first commit adds a directory shaped like a git dir (core.fsmonitor in its config),
    a second takes it away: review's net diff has none of it, but the first commit would
    stay in your history (checkout HEAD~1, bisect). Refused always, --yes or not; so are a
    .gitmodules and a submodule entry that a later commit removes."""
    base = work.git("rev-parse", "HEAD").strip()
    for first in (GITDIR, {".gitmodules": "[submodule \"x\"]\n\tpath = x\n\turl = ../x\n"}):
        branch(work, base, {**first, "feature.txt": "one\n"},
               {**dict.fromkeys(first), "feature.txt": "two\n"})
        assert work.review_paths() == ["feature.txt"]
        state = work.index_and_head()
        p = work.agent("apply", "--commit", "--yes", "s")
        assert p.returncode == 1 and "another repository" in p.stderr, p.stderr
        assert "step 0" in p.stderr and len(p.stderr.strip().splitlines()) == 1
        assert work.index_and_head() == state and not (work.root / "feature.txt").exists()
    branch(work, base, {"feature.txt": "one\n", "sub": base}, {"sub": None}, mode="160000")
    p = work.agent("apply", "--commit", "--yes", "s")
    assert p.returncode == 1 and "submodule" in p.stderr and work.index_and_head() == state


def test_apply_commit_asks_about_the_risky_files_of_every_commit_it_lands(work: Work) -> None:
    """A Makefile that a first commit brings and a second puts back is in your history once
    landed (`git bisect run make`): the prompt names it, with its commit; without a
    terminal it is refused unless --yes."""
    work.sh("printf 'test:\\n\\ttrue\\n' > Makefile && git add Makefile && git commit -qm make")
    base = work.git("rev-parse", "HEAD").strip()
    branch(work, base, {"Makefile": "test:\n\ttouch PWNED\n", "feature.txt": "one\n"},
           {"Makefile": "test:\n\ttrue\n", "feature.txt": "two\n"})
    assert work.review_paths() == ["feature.txt"]
    state = work.index_and_head()
    p = work.agent("apply", "--commit", "s")
    assert p.returncode == 1 and "--yes" in p.stderr, p.stderr
    assert "! Makefile: build script: runs on make (in commit" in p.stderr
    assert "step 0" in p.stderr and work.index_and_head() == state
    p = work.ok("apply", "--commit", "--yes", "s")
    assert "Makefile" in p.stderr
    assert work.git("show", "HEAD~1:Makefile") == "test:\n\ttouch PWNED\n"


def test_apply_commit_never_writes_over_what_your_index_does_not_track(work: Work) -> None:
    """Your ignored files (a key, a build dir, a log) and an ignored file inside a tracked
    directory the agent replaces by a file: git's read-tree counts ignored files as
    expendable; --commit refuses, names them, writes nothing."""
    work.sh("printf 'secret.key\\nbuild/\\n*.log\\n' > .gitignore && git add .gitignore && "
            "git commit -qm ignore && echo KEY > secret.key && mkdir build && "
            "echo notes > build/notes && echo log > out.log && echo mine > docs/guide/local.log")
    base = work.git("rev-parse", "HEAD").strip()
    branch(work, base, {"docs/guide/a.md": None, "docs/guide/deep/b.md": None,
                        "docs/guide": "now a file\n", "secret.key": "agent\n",
                        "build": "agent\n", "out.log/x": "agent\n", "feature.txt": "f\n"})
    state, files = work.index_and_head(), work.snapshot()
    p = work.agent("apply", "--commit", "--yes", "s")
    assert p.returncode == 1 and "nothing was landed" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    for path in ("secret.key", "build", "out.log", "docs/guide/local.log"):
        assert path in p.stderr
    assert "feature.txt" not in p.stderr
    assert work.index_and_head() == state and work.snapshot() == files
    # once they are moved away, it lands
    work.sh("rm -r secret.key build out.log docs/guide/local.log")
    work.ok("apply", "--commit", "--yes", "s")
    assert work.git("status", "--porcelain") == "" and work.git("show", "HEAD:build") == "agent\n"


def test_apply_commit_that_fails_while_writing_leaves_your_worktree_as_it_was(
        work: Work) -> None:
    """git's read-tree fails partway (here a name longer than the filesystem takes, which
    fails for root too; a directory you cannot write does the same): the files it wrote
    before are taken back; worktree, index and HEAD as they were, and it says so."""
    work.sh("echo mine > docs/c.md")  # a change of yours elsewhere stays
    base = work.git("rev-parse", "HEAD").strip()
    branch(work, base, {"README.md": "agent\n", "aaa.txt": "agent\n", "src/util.py": None,
                        "docs/guide/deep/b.md": None, "docs/guide/deep": "a file now\n",
                        "new/dir/x.txt": "agent\n", "zz/" + "z" * 300: "agent\n"})
    state, files = work.index_and_head(), work.snapshot()
    p = work.agent("apply", "--commit", "--yes", "s")
    assert p.returncode == 1 and "nothing was landed" in p.stderr, p.stderr
    assert "put back" in p.stderr
    assert work.index_and_head() == state and work.snapshot() == files
    assert work.git("status", "--porcelain") == " M docs/c.md\n"


def test_apply_commit_puts_no_terminal_escape_into_your_branch(work: Work) -> None:
    """The agent's messages and author names reach your terminal through `git log` (no
    pager prints them raw): landed in UTF-8 with control characters written out; an
    `encoding` header (UTF-7 spells ESC as +ABs-) is read, then dropped."""
    base = work.git("rev-parse", "HEAD").strip()
    tree = work.git("rev-parse", "HEAD^{tree}").strip()
    blob = work.actor.run(["sh", "-c", "echo x | git hash-object -w --stdin"], cwd=work.root,
                          check=True).stdout.strip()
    work.sh(f"git read-tree {tree} && git update-index --add --cacheinfo 100644,{blob},x.txt")
    new_tree = work.git("write-tree").strip()
    work.sh(f"git read-tree {tree}")
    raw = (f"tree {new_tree}\nparent {base}\n"
           "author Ev\x1b]0;il <a@x> 1700000000 +0000\n"
           "committer Ev <a@x> 1700000000 +0000\nencoding UTF-7\n\n"
           f"fix +ABs-]52;c;Y3VybA==+AAc- typo\n\nAgent-Base: {base}\n")
    oid = work.actor.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"],
                         cwd=work.root, input=raw, check=True).stdout.strip()
    work.git("update-ref", "refs/heads/agent/s", oid)
    p = work.ok("apply", "--commit", "--yes", "s")
    assert "\x1b" not in p.stderr and "\x07" not in p.stderr
    shown = work.git("--no-pager", "log", "-1", "--format=%an%n%B")
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown.startswith("Ev\\x1b]0;il\nfix \\x1b]52;c;Y3VybA==\\x07 typo\n"), shown
    assert "encoding" not in work.git("cat-file", "commit", "HEAD")


def test_apply_never_moves_a_branch_checked_out_in_another_worktree(work: Work) -> None:
    """agent/S checked out in a linked worktree (to look at the agent's work): apply would
    rewrite that branch after it writes, moving that worktree's HEAD under it (its files then
    read as staged changes nobody made). Refused first, as `git branch -f` refuses."""
    work.run("echo a > a.txt && echo b > b.txt")
    other = work.root.parent / "look"
    work.git("worktree", "add", "-q", str(other), "agent/s")
    tip, state = work.git("rev-parse", "agent/s"), work.index_and_head()
    for how in ([], ["--commit"]):
        p = work.agent("apply", *how, "--yes", "s", "--", "a.txt")
        assert p.returncode == 1 and "checked out in" in p.stderr and str(other) in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert work.git("rev-parse", "agent/s") == tip and work.index_and_head() == state
        assert work.actor.git("status", "--porcelain", cwd=other) == ""
    work.actor.git("switch", "-q", "--detach", cwd=other)
    work.ok("apply", "--yes", "s", "--", "a.txt")
    assert work.git("diff", "--name-only", "refs/agent-base/s", "agent/s") == "b.txt\n"
