"""`git agent review`: summary, risks, diff; --stat, --json, paths; bad input."""

from __future__ import annotations

import json

from tests.mergeback.conftest import Work


def test_review_shows_summary_risks_then_diff(work: Work) -> None:
    work.run("echo 'line 11' >> src/app.py; mkdir -p .github/workflows; echo 'on: push' > "
             ".github/workflows/ci.yml; rm docs/c.md; chmod +x tool.sh")
    p = work.ok("review", "s")
    out = p.stdout
    assert "4 files changed: 1 added, 2 modified, 1 deleted" in out
    assert ".github/workflows/ci.yml: CI workflow" in out
    assert "tool.sh: becomes executable" in out
    assert "src/app.py:" not in out.split("diff --git")[0]  # a plain edit is not flagged
    assert out.index("risky") < out.index("diff --git a/.github/workflows/ci.yml")
    assert "+line 11" in out and "\x1b[" not in out  # not a terminal: plain text


def test_review_stat_and_paths(work: Work) -> None:
    work.run("echo x >> src/app.py; echo y >> README.md")
    p = work.ok("review", "s", "--stat", "--", "src")
    assert "1 file changed" in p.stdout and "src/app.py | 1 +" in p.stdout
    assert "diff --git" not in p.stdout and "README" not in p.stdout


def test_review_colour_follows_git_config_and_no_color(work: Work) -> None:
    work.run("echo x >> README.md")
    work.git("config", "color.ui", "always")
    assert "\x1b[" in work.ok("review", "s").stdout
    assert "\x1b[" not in work.ok("review", "s", env={"NO_COLOR": "1"}).stdout


def test_review_json(work: Work) -> None:
    work.run("echo x >> src/util.py; ln -s /etc/passwd pw; rm tool.sh; echo n > tool.sh; "
             "chmod 755 tool.sh; rm README.md; ln -s docs/c.md README.md; mkdir -p z; echo > z/1")
    data = json.loads(work.ok("review", "s", "--json").stdout)
    assert data["session"] == "s" and data["branch"] == "agent/s"
    assert data["base"] == work.git("rev-parse", "refs/agent-base/s").strip()
    assert data["head"] == work.git("rev-parse", "agent/s").strip()
    files = {f["path"]: f for f in data["files"]}
    assert [f["path"] for f in data["files"]] == ["README.md", "pw", "src/util.py", "tool.sh",
                                                  "z/1"]  # git's order
    assert files["README.md"] == {"path": "README.md", "status": "modified", "old_mode": "100644",
                                  "new_mode": "120000", "risks": []}
    assert files["pw"]["status"] == "added" and files["pw"]["old_mode"] is None
    assert "absolute" in files["pw"]["risks"][0]
    assert files["tool.sh"]["new_mode"] == "100755" and files["tool.sh"]["risks"]
    assert files["src/util.py"]["risks"] == []


def test_review_defaults_to_the_current_branch(work: Work) -> None:
    work.ok("run", "--", "sh", "-c", "echo x >> README.md")
    assert "README.md" in work.ok("review").stdout
    work.git("checkout", "-q", "--detach")
    p = work.agent("review")
    assert p.returncode == 1 and p.stderr.strip() == (
        "git agent: no session 'detached' in this worktree (sessions: main)")


def test_review_bad_input_is_one_line(work: Work) -> None:
    work.run("echo x >> README.md")
    for args, code in ((("review", "nope"), 1), (("review", "s", "--", "src/util.py"), 2),
                       (("review", "s", "--", "../x"), 2), (("review", "bad name"), 2)):
        p = work.agent(*args)
        assert p.returncode == code, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("git agent: ")


def test_review_of_a_session_without_changes(work: Work) -> None:
    work.run("true")
    p = work.ok("review", "s")
    assert p.stderr == "git agent: session 's' has no changes\n" and p.stdout == ""
    assert "nothing to apply" in work.ok("apply", "s").stderr
