"""security.md, "What comes back", rule 4: any depth. A session holding 1,500 nested directories
(deeper than Python's recursion limit) can be reviewed, applied and dropped; drop always works.

The deep path is put where an agent puts it: in the session's upper dir (as the actor, by fd),
and on its branch (git plumbing with a scratch index: capture's own depth is tested with
capture). Every test removes the deep trees it made itself (`rm -rf` in finally): pytest's
clean-up of its tmp dirs, and the suite's of the actors' dirs, recurse on depth."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mergeback.conftest import Work

DEPTH = 1500
DEEP = "/".join(["d"] * DEPTH) + "/leaf"

# As the actor: DEPTH dirs d/d/... in the session's upper with leaf at the bottom, made by fd
# (the path is longer than PATH_MAX); prints the session's folder.
_IN_UPPER = f"""
import os
from git_agent import session
from git_agent.repo import find_worktree
s = session.get(find_worktree(), "s")
fd = os.open(s.upper, os.O_RDONLY | os.O_DIRECTORY)
for _ in range({DEPTH}):
    os.mkdir("d", dir_fd=fd)
    n = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = n
leaf = os.open("leaf", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
os.write(leaf, b"deep\\n")
print(s.dir)
"""


@pytest.fixture
def deep(work: Work) -> Iterator[Path]:
    """Session s of work with DEEP in its upper and on its branch; yields the session's folder.
    Removes the session's folder and the worktree's deep dir whatever the test did."""
    work.run("echo x > f")
    sdir = Path(work.actor.run([sys.executable, "-c", _IN_UPPER], cwd=work.root,
                               check=True).stdout.strip())
    try:
        index = work.actor.base / "deep-index"
        env = {"GIT_INDEX_FILE": str(index)}
        head = work.git("rev-parse", "refs/heads/agent/s").strip()
        base = work.git("rev-parse", "refs/agent-base/s").strip()
        oid = work.actor.run(["git", "hash-object", "-w", "--stdin"], cwd=work.root,
                             input="deep\n", check=True).stdout.strip()
        work.actor.run(["git", "read-tree", head], cwd=work.root, env=env, check=True)
        work.actor.run(["git", "update-index", "--add", "--cacheinfo", f"100644,{oid},{DEEP}"],
                       cwd=work.root, env=env, check=True)
        tree = work.actor.run(["git", "write-tree"], cwd=work.root, env=env,
                              check=True).stdout.strip()
        commit = work.actor.run(
            ["git", "commit-tree", tree, "-p", head, "-F", "-"], cwd=work.root, check=True,
            input=f"deep\n\nAgent-Session: s\nAgent-Base: {base}\n").stdout.strip()
        work.git("update-ref", "refs/heads/agent/s", commit)
        yield sdir
    finally:
        subprocess.run(["rm", "-rf", str(sdir), str(work.root / "d")], check=True)


def test_a_very_deep_session_is_reviewed(work: Work, deep: Path) -> None:
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    assert sorted(f["path"] for f in files) == [DEEP, "f"]
    assert "2 files" in work.ok("review", "s", "--stat").stdout
    assert "no risky files" in work.ok("review", "s", "--stat").stdout


def test_a_very_deep_session_is_applied(work: Work, deep: Path) -> None:
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    assert sorted(f["path"] for f in files) == [DEEP, "f"]
    assert "2 files" in work.ok("review", "s", "--stat").stdout
    p = work.ok("apply", "s")
    assert "applied 2 files" in p.stderr
    # git is the oracle: your worktree has the file, as untracked work
    status = work.git("status", "--porcelain", "-uall", "-z").split("\0")
    assert f"?? {DEEP}" in status and "?? f" in status
    # the branch is what is left (nothing: its base); its record before apply has the file
    assert DEEP not in work.git("ls-tree", "-r", "--name-only", "agent/s").splitlines()
    assert work.git("cat-file", "blob", f"refs/agent-history/s^1:{DEEP}") == "deep\n"
    # applied paths left the session, however deep: its upper holds no file any more
    assert json.loads(work.ok("review", "s", "--json").stdout)["files"] == []
    leaves = subprocess.run(["find", str(deep / "upper"), "-type", "f"], capture_output=True,
                            text=True, check=True).stdout
    assert leaves == ""
    work.ok("drop", "-f", "s")
    assert not deep.exists()


def test_drop_works_on_a_very_deep_session(work: Work, deep: Path) -> None:
    """drop always works: 1,500 nested directories in the session's overlay."""
    assert deep.is_dir()
    assert any(line.split()[:1] == ["s"] for line in work.ok("list").stdout.splitlines())
    work.ok("drop", "-f", "s")
    assert not deep.exists()
    assert work.git("for-each-ref", "refs/agent-base", "refs/heads/agent") == ""
