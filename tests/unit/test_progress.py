"""Long steps show progress on a terminal and nothing when stderr is not one."""

from __future__ import annotations

import os
import pty
import select
import sys
import time

import pytest

from git_agent import ui


def test_silent_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    p = ui.Progress("capturing", 10_000)
    for _ in range(10_000):
        p.step()
    p.done()
    assert capsys.readouterr().err == ""


def test_counts_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        monkeypatch.setattr(sys, "stderr", tty)
        p = ui.Progress("applying", 1000)
        for _ in range(1000):
            p.step()
        p.done()
        small = ui.Progress("applying", 3)  # a short step says nothing
        small.step()
        small.done()
    out = ""
    # a pty hands it over in pieces, maybe late: read all of it, to the EIO that says the
    # other side is closed and drained (never a quiet spell, which a busy machine can make)
    deadline = time.monotonic() + 60
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no end of the pty's output: {out!r}"
        if not select.select([master], [], [], left)[0]:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO
            break
        if not chunk:
            break
        out += chunk.decode()
    os.close(master)
    assert "applying: 1000/1000" in out
    assert out.endswith("\r\x1b[K")
    assert "/3" not in out
