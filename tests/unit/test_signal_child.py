"""launch.signal_child: a signal reaches a pid only while it is the expected parent's child."""

from __future__ import annotations

import os
import signal
import subprocess

from git_agent import launch


def test_signals_a_child_of_the_given_parent() -> None:
    p = subprocess.Popen(["sleep", "30"])
    try:
        assert launch.signal_child(os.getpid(), p.pid, signal.SIGTERM)
        assert p.wait(timeout=10) == -signal.SIGTERM
    finally:
        p.kill()
        p.wait()


def test_leaves_alone_a_pid_whose_parent_is_another() -> None:
    p = subprocess.Popen(["sleep", "30"])
    try:
        assert not launch.signal_child(os.getppid(), p.pid, signal.SIGTERM)  # not its parent
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()


def test_a_pid_that_is_gone_is_not_signalled() -> None:
    p = subprocess.Popen(["true"])
    p.wait()  # reaped: its pid names no process now (or, reused, not our child)
    assert not launch.signal_child(os.getpid(), p.pid, signal.SIGTERM)
