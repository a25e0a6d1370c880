"""Session names become branches: session.refname_ok agrees with `git check-ref-format`."""

from __future__ import annotations

import os
import subprocess

import pytest

from git_agent.session import BRANCH_PREFIX, refname_ok

NAMES = [
    "fix-42", "a/b", "a//b", "/a", "a/", ".a", "a/.b", "a.", "a./b", "a.lock", "a.lock/b",
    "a/b.lock", "a.lockx", "x.lock.y", "a..b", "a.b", "@", "a@{b", "a@b", "a{b", "@{", "{",
    "a b", "a\tb", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b", "a]b", "a\\b", "a\x7fb",
    "a\x01b", "é", "naïve/branch", "a\udcffb", "-x", "a.-b", "...", "a/./b", "a/../b", "a%b",
    "a#b", "a!b", "a'b", 'a"b', "a$b", "a|b", "a;b", "a,b", "a=b", "a+b", "a<b", "a>b",
]


@pytest.mark.parametrize("name", NAMES)
def test_refname_ok_matches_git(name: str) -> None:
    ref = BRANCH_PREFIX + name
    git = subprocess.run([b"git", b"check-ref-format", os.fsencode(ref)],
                         capture_output=True).returncode == 0
    assert refname_ok(ref) is git


@pytest.mark.parametrize("ref", ["a", "", "@", "refs/heads/a.", "refs/heads/a\0b"])
def test_refname_ok_matches_git_top_level(ref: str) -> None:
    if "\0" in ref:
        assert not refname_ok(ref)  # no process can even be given this name
        return
    git = subprocess.run(["git", "check-ref-format", ref], capture_output=True).returncode == 0
    assert refname_ok(ref) is git
