"""`git agent apply -i` driven through stdin: y n r d Y N R q ?, invalid answers, EOF."""

from __future__ import annotations

from tests.mergeback.conftest import Work

SCRIPT = "echo a >> README.md; echo b >> docs/c.md; echo c >> src/app.py; echo d >> src/util.py"
ORDER = ["README.md", "docs/c.md", "src/app.py", "src/util.py"]


def test_each_answer(work: Work) -> None:
    work.run(SCRIPT)
    before = work.index_and_head()
    p = work.ok("apply", "-i", "s", input="what\n?\nd\ny\nn\nr\nq\n")
    err = p.stderr
    assert "[MODIFIED] README.md" in err and "unknown answer 'what'" in err
    assert "r - reject it" in err
    assert "+a" in p.stdout and "diff --git a/README.md" in p.stdout  # d showed the diff
    assert err.count("apply src/util.py?") == 1  # asked once: q stopped there
    assert work.git("status", "--porcelain") == " M README.md\n"  # y applied; r kept worktree's
    assert work.index_and_head() == before
    assert work.review_paths() == ["docs/c.md", "src/util.py"]  # n and the rest stay


def test_bulk_answers(work: Work) -> None:
    work.run(SCRIPT)
    work.ok("apply", "-i", "s", input="y\nR\n")
    assert work.git("status", "--porcelain") == " M README.md\n"
    assert work.review_paths() == []


def test_yes_to_all_and_no_to_all(work: Work) -> None:
    work.run(SCRIPT)
    work.ok("apply", "-i", "s", input="n\nY\n")
    assert work.git("status", "--porcelain").splitlines() == [
        " M docs/c.md", " M src/app.py", " M src/util.py"]
    assert work.review_paths() == ["README.md"]
    p = work.ok("apply", "-i", "s", input="N\n")
    assert "nothing chosen" in p.stderr and work.review_paths() == ["README.md"]


def test_end_of_input_aborts_with_nothing_changed(work: Work) -> None:
    work.run(SCRIPT)
    before = work.snapshot()
    for answers in ("", "y\ny\n", "y\nd\n"):
        p = work.agent("apply", "-i", "s", input=answers)
        assert p.returncode == 130, p.stderr
        assert p.stderr.strip().splitlines()[-1] == (
            "git agent: end of input at a prompt; nothing was changed")
        assert work.snapshot() == before and work.review_paths() == ORDER


def test_risks_and_tags_are_shown(work: Work) -> None:
    work.run("echo x > .envrc; rm docs/c.md")
    p = work.ok("apply", "-i", "s", input="N\n")
    assert "[NEW] .envrc (clean)\n  ! direnv: runs when you cd into the directory" in p.stderr
    assert "[DELETED] docs/c.md (clean): skip" in p.stderr


def test_no_run_of_the_session_starts_while_apply_asks(work: Work) -> None:
    """apply holds the session's lock from its first question to its last write; the others
    are told it is being applied (not that it runs), and a second apply waits its turn."""
    import os
    import select
    import subprocess
    import time

    work.run(SCRIPT)
    a = work.actor
    asking = subprocess.Popen(
        a._argv(["git", "agent", "apply", "-i", "s"]), cwd=work.root, env=a.env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    asked = b""
    try:
        # it holds the lock from before its first question: wait until that question is asked
        fd = asking.stderr.fileno()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while b"apply README.md?" not in asked:
            left = deadline - time.monotonic()
            assert left > 0, f"apply -i never asked its first question: {asked!r}"
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                assert chunk, f"apply -i ended before asking: {asked!r}"
                asked += chunk
        p = work.agent("run", "-s", "s", "--", "sh", "-c", "echo late >> README.md")
        assert p.returncode == 1 and "is being applied by another git agent" in p.stderr
        assert p.stderr.count("\n") == 1, p.stderr
        p = work.agent("apply", "s")
        assert p.returncode == 1 and "is being applied by another git agent" in p.stderr
        assert "capturing" not in p.stderr, p.stderr  # not taken for a running session
        assert work.git("status", "--porcelain") == ""  # the second wrote nothing
        p = work.ok("list")
        assert "applying" in p.stdout and "running" not in p.stdout
    finally:
        out, err = asking.communicate(b"Y\n", timeout=60)
    err = asked + err
    assert asking.returncode == 0, err
    assert work.review_paths() == []
    assert "late" not in (work.root / "README.md").read_text()
