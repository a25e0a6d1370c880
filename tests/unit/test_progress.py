"""Long steps show progress on a terminal and nothing when stderr is not one."""

from __future__ import annotations

import os
import pty
import sys

import pytest
from helpers import read_to_eio

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
    # a pty hands it over in pieces, maybe late: all of it, to the EIO
    raw, ended = read_to_eio(master, 60)
    assert ended, f"no end of the pty's output: {raw!r}"
    out = raw.decode()
    os.close(master)
    assert "applying: 1000/1000" in out
    assert out.endswith("\r\x1b[K")
    assert "/3" not in out
