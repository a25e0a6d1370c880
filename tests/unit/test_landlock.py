"""Landlock ABI probing and the refusal on kernels without scopes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from git_agent.errors import SandboxUnavailable
from git_agent.sandbox import landlock


def test_abi_version_is_a_non_negative_int() -> None:
    assert isinstance(landlock.abi_version(), int) and landlock.abi_version() >= 0


@pytest.mark.parametrize("abi", [0, 5])
def test_old_kernels_are_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch, abi: int) -> None:
    monkeypatch.setattr(landlock, "abi_version", lambda: abi)
    with pytest.raises(SandboxUnavailable, match="ABI 6"):
        landlock.prepare_scope_restriction()


def test_preexec_restricts_the_child_only() -> None:
    if landlock.abi_version() < landlock.SCOPE_MIN_ABI:
        pytest.skip("needs Landlock ABI >= 6")
    status = Path("/proc/self/status")
    before = status.read_text()
    out = subprocess.run(
        ["cat", "/proc/self/status"], preexec_fn=landlock.prepare_scope_restriction(),
        capture_output=True, text=True, check=True,
    ).stdout
    assert "NoNewPrivs:\t1" in out
    nnp = re.compile(r"NoNewPrivs:\t(\d)")
    assert nnp.findall(status.read_text()) == nnp.findall(before)  # we are not restricted
