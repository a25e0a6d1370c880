"""Conflicts you can step around (#13.2) and apply's messages (#13.7), through the real CLI;
git is the oracle (git diff, git status, the session's branch)."""

from __future__ import annotations

from tests.mergeback.conftest import Work

# README: clean; src/app.py: you changed another line (merges); src/util.py: both, same line
AGENT = ("echo agent >> README.md; sed -i 's/^line 2$/agent 2/' src/app.py;"
         " sed -i 's/return 1/return 2/' src/util.py")
YOURS = "sed -i 's/^line 9$/mine 9/' src/app.py; sed -i 's/return 1/return 3/' src/util.py"


def test_the_prompt_marks_each_file_and_y_takes_a_conflict_with_markers(work: Work) -> None:
    work.run(AGENT)
    work.sh(YOURS)
    before = work.index_and_head()
    p = work.agent("apply", "-i", "s", input="y\ny\ny\n")
    err = p.stderr
    assert "[MODIFIED] README.md (clean)" in err
    assert "[MODIFIED] src/app.py (you changed it too (merges cleanly))" in err
    assert ("[MODIFIED] src/util.py (conflicts: changed by both, overlapping; y writes it with "
            "conflict markers (base section included), n leaves it in the session)") in err
    assert p.returncode == 1 and "conflict markers written in src/util.py" in err
    util = (work.root / "src/util.py").read_text()
    assert ("<<<<<<< worktree\n    return 3\n||||||| base\n    return 1\n=======\n"
            "    return 2\n>>>>>>> agent/s\n") in util
    app = (work.root / "src/app.py").read_text()
    assert "agent 2\n" in app and "mine 9\n" in app
    assert work.index_and_head() == before
    assert work.review_paths() == []


def test_n_on_a_conflict_keeps_every_other_answer(work: Work) -> None:
    work.run(AGENT)
    work.sh(YOURS)
    p = work.ok("apply", "-i", "s", input="y\ny\nn\n")
    assert "nothing was applied" not in p.stderr
    assert work.git("diff", "--stat").count("|") == 3  # README, app.py and your util.py
    assert "return 3" in (work.root / "src/util.py").read_text()  # yours, untouched
    assert work.review_paths() == ["src/util.py"]


def test_non_interactive_is_all_or_nothing_unless_skip_conflicts(work: Work) -> None:
    work.run(AGENT)
    work.sh(YOURS)
    snap = work.snapshot()
    p = work.agent("apply", "s")
    assert p.returncode == 1 and "nothing was applied" in p.stderr
    assert "--skip-conflicts applies the rest" in p.stderr
    assert work.snapshot() == snap
    p = work.agent("apply", "--skip-conflicts", "s")
    assert p.returncode == 1, p.stderr
    assert ("left in the session: src/util.py (conflicts: changed by both, overlapping)"
            in p.stderr)
    assert "applied 2 files" in p.stderr
    assert (work.root / "README.md").read_text() == "hello\nagent\n"
    assert "return 3" in (work.root / "src/util.py").read_text()
    assert work.review_paths() == ["src/util.py"]
    p = work.agent("apply", "--skip-conflicts", "--merge", "s")
    assert p.returncode == 2 and "choose one" in p.stderr


def test_merge_of_modify_delete_says_it_wrote_the_agents_file_back(work: Work) -> None:
    work.run("sed -i 's/return 1/return 2/' src/util.py")
    work.sh("rm src/util.py")
    p = work.agent("apply", "s")
    assert p.returncode == 1 and "changed by the agent, deleted in your worktree" in p.stderr
    p = work.agent("apply", "--merge", "s")
    assert p.returncode == 1
    assert ("CONFLICT (modify/delete): src/util.py was deleted in your worktree and changed "
            "by the agent; the agent's version was written back over your deletion") in p.stderr
    assert (work.root / "src/util.py").read_text() == "def f():\n    return 2\n"


def test_already_applied_and_discarded_are_said(work: Work) -> None:
    work.run("echo x >> README.md; echo y >> docs/c.md; echo z >> src/app.py")
    work.ok("apply", "-i", "s", "--", "README.md", "docs", input="y\nr\n")
    p = work.ok("apply", "s", "--", "README.md")
    assert "README.md: already applied (session 's' no longer holds it)" in p.stderr
    p = work.ok("apply", "s", "--", "docs/c.md")
    assert "docs/c.md: already discarded from session 's'" in p.stderr
    assert work.git("status", "--porcelain") == " M README.md\n"
    p = work.agent("apply", "s", "--", "README.md", "src/app.py")  # the rest still applies
    assert p.returncode == 0 and "already applied" in p.stderr
    assert work.git("status", "--porcelain") == " M README.md\n M src/app.py\n"
