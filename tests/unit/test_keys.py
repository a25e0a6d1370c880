"""The key schema: which agent.* keys are known, and the nearest one to a typo."""

from __future__ import annotations

import pytest

from git_agent.settings import effective, keys
from git_agent.settings.gitconfig import Entry, GitConfig


@pytest.mark.parametrize(("typo", "meant"), [
    ("agent.mounts", "agent.mount"), ("agent.nett", "agent.net"),
    ("agent.passenv2", "agent.passEnv"), ("agent.allowports", "agent.allowPort"),
    ("agent.preset.claude.passenvs", "agent.preset.claude.passEnv"),
])
def test_nearest_known_key(typo: str, meant: str) -> None:
    assert not keys.is_known(typo)
    assert keys.nearest(typo) == meant


def test_known_keys_and_preset_vars() -> None:
    assert keys.is_known("agent.allowport") and keys.is_known("agent.preset.my.setenv")
    assert not keys.is_known("agent.preset.setenv")  # no preset name
    assert keys.nearest("agent.zzzzzzzzzz") is None


def test_each_unknown_key_is_warned_about_once() -> None:
    cfg = GitConfig([Entry("agent.nett", "none", "global", "file:/h/.gitconfig"),
                     Entry("agent.nett", "host", "local", "file:.git/config"),
                     Entry("agent.net", "none", "local", "file:.git/config")])
    lines = effective.unknown_warnings(cfg)
    assert len(lines) == 1 and "agent.nett" in lines[0] and "did you mean agent.net?" in lines[0]


@pytest.mark.parametrize(("word", "meant"), [
    ("claud", "claude"), ("gti", "git"), ("codx", "codex"), ("aidre", "aider"),
    ("opencoed", "opencode"), ("zzz", None), ("claude", None),
])
def test_did_you_mean_one_typo_away(word: str, meant: str | None) -> None:
    from git_agent.sandbox.inside import nearest

    names = ["claude", "codex", "aider", "opencode", "git", "tic", "gio", "gsutil"]
    assert nearest(word, names) == meant
