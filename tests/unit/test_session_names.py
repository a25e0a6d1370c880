"""Session names are checked in-process; `git check-ref-format` is the oracle."""

from __future__ import annotations

import subprocess

import pytest

from git_agent import session
from git_agent.errors import UsageError

NAMES = [
    "main", "feature/x", "fix-42", "a.b", "v1.0", "x_y", "ümlaut", "a@b", "@", "a/@",
    "", " ", "a b", "a..b", "-x", "x.lock", "a/b.lock", "a.lock/b", "bad~", "a^b", "a:b", "a?b",
    "a*b", "a[b", "a\\b", "a@{b", "/a", "a/", "a//b", ".a", "a/.b", "a.", "a/b.", "\x01", "a\x7f",
    "tab\there", "new\nline", "x" * 300, "a/" * 5 + "b",
]


def git_accepts(name: str) -> bool:
    if not name or "\n" in name or "\x00" in name:
        return False
    p = subprocess.run(["git", "check-ref-format", f"refs/heads/agent/{name}"], capture_output=True)
    return p.returncode == 0


@pytest.mark.parametrize("name", NAMES)
def test_names_match_git(name: str) -> None:
    ours = True
    try:
        session.check_name(name)
    except UsageError:
        ours = False
    if name == "x" * 300 or name.startswith("-"):
        # git takes them; we do not: a folder name that cannot exist, a name read as an option
        assert ours is False
        return
    assert ours == git_accepts(name), name


def test_refusal_is_one_line() -> None:
    with pytest.raises(UsageError) as e:
        session.check_name("n" * 300)
    assert "too long" in str(e.value) and "\n" not in str(e.value)
