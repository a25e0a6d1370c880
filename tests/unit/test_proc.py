"""proc.run: background children in a group of their own, run again when a ^C got them first."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from git_agent import proc

# dies of SIGINT the first time (as a ^C to our group just before it left it), then succeeds
FIRST_INTERRUPTED = 'if [ -e "$1" ]; then echo second; else : > "$1"; kill -INT $$; fi'


def in_thread(
    fn: Callable[[], subprocess.CompletedProcess[bytes]],
) -> subprocess.CompletedProcess[bytes]:
    out: list[subprocess.CompletedProcess[bytes]] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    assert out, "the thread raised"
    return out[0]


def test_a_background_child_killed_by_a_terminal_signal_runs_again(tmp_path: Path) -> None:
    got = in_thread(lambda: proc.run(["sh", "-c", FIRST_INTERRUPTED, "sh", str(tmp_path / "m")]))
    assert got.stdout == b"second\n"


def test_a_foreground_child_killed_by_sigint_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(proc.CalledProcessError):
        proc.run(["sh", "-c", FIRST_INTERRUPTED, "sh", str(tmp_path / "m")])


def test_background_children_have_a_process_group_of_their_own() -> None:
    got = in_thread(lambda: proc.run(["sh", "-c", "ps -o pgid= -p $$"]))
    assert int(got.stdout) != os.getpgrp()


STOPPED = """
import threading, time
from git_agent import proc, errors
out = []
def work():
    try:
        proc.run(["sh", "-c", "sleep 30"])  # killed (SIGTERM) by stop_background
    except errors.GitAgentError as e:
        out.append(str(e))
    try:
        proc.run(["sh", "-c", "echo started"])  # after it: not even started
    except errors.GitAgentError as e:
        out.append(str(e))
t = threading.Thread(target=work)
t.start()
while not proc._background_pids:
    time.sleep(0.01)
proc.stop_background()
t.join(10)
print(out)
"""


def test_after_stop_background_a_background_thread_starts_nothing() -> None:
    import sys

    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-c", STOPPED], cwd=root, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "exit status -15" in p.stdout and "not started, git agent is ending" in p.stdout
