"""`git agent capture [SESSION]`: the branch brought up to date with the session's upper dir
(after `run --no-capture`); git is the oracle."""

from __future__ import annotations

from tests.mergeback.conftest import Work


def test_capture_brings_a_no_capture_run_to_its_branch(work: Work) -> None:
    p = work.ok("run", "-s", "later", "--no-capture", "--", "sh", "-c",
                "echo new > n.txt && echo more >> README.md")
    assert "`git agent capture later` brings them to agent/later" in p.stderr
    assert work.git("for-each-ref", "refs/heads/agent/later") == ""  # nothing captured yet
    p = work.ok("capture", "later")
    assert "agent/later " in p.stderr and "1 added, 1 modified" in p.stderr
    assert work.git("show", "agent/later:n.txt") == "new\n"
    assert work.git("diff", "--name-only", "refs/agent-base/later", "agent/later") \
        == "README.md\nn.txt\n"
    tip = work.git("rev-parse", "agent/later")
    work.ok("capture", "later")  # nothing new: the branch stays
    assert work.git("rev-parse", "agent/later") == tip
    assert work.review_paths("later") == ["README.md", "n.txt"]


def test_capture_of_a_session_that_does_not_exist_is_one_line(work: Work) -> None:
    p = work.agent("capture", "nope")
    assert p.returncode == 1 and p.stderr.startswith("git agent: no session 'nope'")
    assert len(p.stderr.splitlines()) == 1
