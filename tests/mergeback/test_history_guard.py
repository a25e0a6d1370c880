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

