"""launch.signal_child: a signal reaches a pid only while it is the expected parent's child."""

from __future__ import annotations

import os
import signal
import subprocess

from git_agent.sandbox import launch


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


def test_a_signal_another_thread_took_is_handled_while_waiting() -> None:
    """The kernel may hand a signal to any thread; its handler must still run at once in the
    main thread, which is waiting for bwrap (launch._wait), not when bwrap has exited."""
    import threading
    import time

    child = subprocess.Popen(["sleep", "5"])
    handled: list[float] = []

    def handler(_signum: int, _frame: object) -> None:
        handled.append(time.monotonic())
        child.kill()

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        def other_thread() -> None:
            time.sleep(0.2)
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # to this thread

        threading.Thread(target=other_thread).start()
        start = time.monotonic()
        launch._wait(child)
        assert handled and handled[0] - start < 2, "the handler waited for the child to exit"
        assert child.returncode == -signal.SIGKILL
    finally:
        signal.signal(signal.SIGUSR1, old)
        child.kill()
