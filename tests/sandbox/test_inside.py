"""You can tell you are inside: a banner on a terminal, a marked prompt, and a `git agent`
inside that says where you are and what works from there (a read-only shim)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import read_to_eio  # noqa: E402

from tests.conftest import Actor  # noqa: E402


def test_git_agent_status_inside_says_session_mode_and_changes(actor: Actor) -> None:
    repo = actor.make_repo(files={"README.md": "hi\n", ".env": "SECRET=1\n"})
    p = actor.agent("run", "-s", "inside-1", "--net", "none", "--hide", ".env", "--", "sh", "-c",
                    "echo new > new.txt && echo changed > README.md && git agent status",
                    cwd=repo)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "sandbox of session inside-1 (its work becomes agent/inside-1)" in out
    assert "network: none" in out and "hidden:  .env" in out
    changed = out.split("deletions show at capture):\n", 1)[1].split("exit the agent", 1)[0]
    assert changed.split() == ["README.md", "new.txt"]  # not .git, not the untouched files


def test_other_verbs_inside_say_they_work_outside(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "--no-capture", "--", "git", "agent", "review", cwd=repo)
    assert p.returncode == 1
    assert "git agent: 'review' works outside the sandbox only; inside: git agent status" \
        in p.stderr
    p = actor.agent("run", "--no-capture", "--", "sh", "-c",
                    "command -v git-agent; git agent; echo x > \"$(command -v git-agent)\"",
                    cwd=repo)
    assert p.returncode != 0  # the shim is read-only inside
    assert p.stdout.splitlines()[0] == "/run/git-agent/bin/git-agent"
    assert "usage: git agent status" in p.stdout


def test_bash_prompt_is_marked_and_startup_file_says_how_to_bring_aliases(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "-s", "mark", "--no-capture", "--", "bash", "-ic",
                    'printf "%s\\n" "${PS1@P}"', cwd=repo)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("(agent:mark)"), p.stdout
    bashrc = (actor.home / "aihome" / ".bashrc").read_text()
    assert "OUTSIDE the sandbox" in bashrc and "~/.bash_aliases" in bashrc


def test_a_terminal_gets_one_banner_line_and_a_pipe_none(actor: Actor) -> None:
    repo = actor.make_repo(files={"README.md": "hi\n", "secrets.txt": "x\n"})
    piped = actor.agent("run", "--no-capture", "--", "true", cwd=repo)
    assert piped.returncode == 0 and piped.stderr.count("git agent:") == 1  # "changes kept"
    master, slave = pty.openpty()
    argv = actor._argv(["git", "agent", "run", "-s", "bn", "--net", "none", "--hide",
                        "secrets.txt", "--no-capture", "--", "true"])
    proc = subprocess.Popen(argv, cwd=repo, env=actor.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    raw, ended = read_to_eio(master, 60)
    os.close(master)
    assert proc.wait(60) == 0 and ended
    lines = [ln for ln in raw.decode().splitlines() if "exit to capture" in ln]
    assert lines == ["git agent: session bn · network none · hidden: secrets.txt · exit to "
                     "capture into agent/bn (inside: git agent status)"], raw
