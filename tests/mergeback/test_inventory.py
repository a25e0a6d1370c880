"""`git agent list` and `git agent drop`."""

from __future__ import annotations

import json

from tests.mergeback.conftest import Work


def test_list(work: Work) -> None:
    assert "no sessions" in work.ok("list").stderr
    assert json.loads(work.ok("list", "--json").stdout) == []
    work.run("echo x >> README.md; echo y > new", session="one")
    p = work.agent("run", "-s", "two", "--", "sh", "-c", "echo z > z; exit 3")
    assert p.returncode == 3
    rows = json.loads(work.ok("list", "--json").stdout)
    assert [(r["name"], r["branch"], r["running"], r["files"]) for r in rows] == [
        ("one", "agent/one", False, 2), ("two", "agent/two", False, 1)]
    assert rows[1]["last_run"]["exit_status"] == 3
    assert rows[1]["last_run"]["command"] == ["sh", "-c", "echo z > z; exit 3"]
    assert rows[0]["size"] > 0
    text = work.ok("list").stdout
    assert text.splitlines()[0].split() == ["SESSION", "BRANCH", "STATE", "WHERE", "FILES",
                                            "SIZE", "LAST", "RUN"]
    assert "exit 3" in text and "idle" in text


def test_drop(work: Work) -> None:
    work.run("echo x >> README.md", session="gone")
    p = work.agent("drop", "gone")  # no terminal: needs --force
    assert p.returncode == 1 and "--force" in p.stderr
    assert work.review_paths("gone") == ["README.md"]
    work.ok("drop", "--force", "gone")
    assert work.git("for-each-ref", "refs/heads/agent", "refs/agent-base") == ""
    assert json.loads(work.ok("list", "--json").stdout) == []
    p = work.agent("drop", "--force", "gone")
    assert p.returncode == 1 and p.stderr == "git agent: no session 'gone' in this worktree\n"
    # a dropped name starts fresh
    work.run("echo y > fresh", session="gone")
    assert work.review_paths("gone") == ["fresh"]
    assert (work.root / "README.md").read_text() == "hello\n"


def test_list_all_shows_the_sessions_of_every_worktree(work: Work) -> None:
    other = work.actor.base / "linked"
    work.git("worktree", "add", "-q", "-b", "side", str(other))
    p = work.actor.agent("run", "-s", "there", "--", "sh", "-c", "echo 1 > z", cwd=other)
    assert p.returncode == 0, p.stderr
    here = work.ok("list")
    assert "no sessions in this worktree" in here.stderr
    assert "1 in other worktrees of this repository: git agent list --all" in here.stderr
    rows = json.loads(work.ok("list", "--all", "--json").stdout)
    assert [(r["name"], r["worktree"], r["files"]) for r in rows] == [("there", str(other), 1)]
    work.run("echo x > y", session="mine")
    text = work.ok("list", "--all").stdout.splitlines()
    assert text[0].split()[:2] == ["WORKTREE", "SESSION"]
    assert [ln.split()[:2] for ln in text[1:]] == [[str(work.root), "mine"], [str(other), "there"]]
    assert "1 more in other worktrees" in work.ok("list").stderr
