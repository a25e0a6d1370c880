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
    assert text.splitlines()[0].split() == ["SESSION", "BRANCH", "STATE", "FILES", "SIZE", "LAST",
                                            "RUN"]
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
