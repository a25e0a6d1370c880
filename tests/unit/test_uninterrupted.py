"""ui.uninterrupted: ^C and SIGTERM wait for the block; programs it starts are not affected."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import os, signal, sys, time
from git_agent import proc, ui
with ui.uninterrupted() as held:
    os.killpg(0, signal.SIGINT)  # as the terminal's ^C: to our whole process group
    time.sleep(0.1)
    print("block finished", flush=True)
    # the child reads its own status (no shell between: dash blocks every signal for a moment
    # while it waits for a command, which a grep of the shell's status can catch)
    out = proc.run(["grep", "-E", "^(NSpgid|SigBlk):", "/proc/self/status"]).stdout
    print("child", out.decode().split(), os.getpgrp(), flush=True)
print("held", held, flush=True)
ui.act_on(held)
print("not reached", flush=True)
"""


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, start_new_session=True)


def test_a_signal_waits_for_the_block_then_acts() -> None:
    p = run(SCRIPT)
    assert "block finished" in p.stdout and f"held [{int(signal.SIGINT)}]" in p.stdout
    assert "not reached" not in p.stdout
    assert p.returncode == -signal.SIGINT  # killed by it, as a shell expects of a ^C


def test_programs_started_inside_have_their_own_group_and_no_blocked_signals() -> None:
    p = run(SCRIPT)
    line = next(x for x in p.stdout.splitlines() if x.startswith("child "))
    words = line.replace("[", "").replace("]", "").replace("'", "").replace(",", "").split()
    assert words[1] == "NSpgid:" and words[3] == "SigBlk:", line
    child_group, blocked, ours = words[2], words[4], words[5]
    assert child_group != ours  # the terminal's ^C does not reach it
    assert int(blocked, 16) == 0  # it can still be interrupted itself


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1", "SIGALRM"])
def test_other_deadly_signals_too_and_the_handlers_come_back(name: str) -> None:
    script = SCRIPT.replace("signal.SIGINT", f"signal.{name}")
    p = run(script)
    assert "block finished" in p.stdout and "not reached" not in p.stdout
    assert p.returncode == -getattr(signal, name)
    restored = run("import signal\nfrom git_agent import ui\nbefore = signal.getsignal(2)\n"
                   "with ui.uninterrupted() as held:\n    pass\n"
                   "print(signal.getsignal(2) is before, held)")
    assert restored.stdout.strip() == "True []"


def test_a_signal_ignored_before_stays_ignored() -> None:
    """nohup git agent apply: a hang-up meanwhile must not end it after the block."""
    script = "import signal\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\n" + SCRIPT.replace(
        "signal.SIGINT", "signal.SIGHUP")
    p = run(script)
    assert "held []" in p.stdout and "not reached" in p.stdout and p.returncode == 0


def test_the_notice_is_said_at_once_and_once() -> None:
    script = r"""
import os, signal, sys
from git_agent import ui
with ui.uninterrupted(notice="finishing the write first") as held:
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)
    sys.stderr.write("after the signals\n")
ui.act_on(held)
"""
    p = run(script)
    assert p.stderr.startswith("git agent: finishing the write first\nafter the signals\n"), \
        p.stderr
    assert p.stderr.count("finishing") == 1 and p.returncode == -signal.SIGINT
