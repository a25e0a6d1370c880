"""The credentials found in mounted toolchain dirs: find(1) and the Python walk agree, at any
depth, by name and by known path, links standing for the files they lead to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from git_agent.sandbox import toolchain


def _tree(home: Path) -> list[Path]:
    files = {
        ".cargo/config.toml": "x", ".cargo/bin/cargo": "x", ".cargo/a/b/c/d/.netrc": "x",
        ".m2/settings.xml": "x", ".m2/repository/settings.xml": "x",  # only .m2/settings.xml
        ".docker/config.json": "x", ".docker/other/config.json": "x",
        ".docker/stash": "x", ".nvm/versions/node/v1/etc/npmrc": "x",
    }
    for rel, text in files.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text)
    os.symlink("stash", home / ".docker" / ".dockercfg")  # a link: the file it leads to
    os.symlink("/etc/hostname", home / ".cargo" / "credentials")  # outside: not there inside
    return [home / d for d in (".cargo", ".m2", ".docker", ".nvm", ".missing")]


EXPECTED = {".cargo/config.toml", ".cargo/a/b/c/d/.netrc", ".m2/settings.xml",
            ".docker/config.json", ".docker/stash", ".nvm/versions/node/v1/etc/npmrc"}


def test_find_and_the_walk_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = _tree(tmp_path)
    found = toolchain.find_secrets(dirs)
    assert {str(p.relative_to(tmp_path)) for p in found} == EXPECTED
    monkeypatch.setattr(toolchain, "_find", lambda tops: None)
    walked = toolchain.find_secrets(dirs)
    assert sorted(walked) == sorted(found)


def test_a_scan_started_early_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = _tree(tmp_path)
    toolchain.start_scan(dirs)
    assert toolchain._started is not None
    monkeypatch.setattr(toolchain, "_find", lambda tops: pytest.fail("found twice"))
    assert {str(p.relative_to(tmp_path)) for p in toolchain.find_secrets(dirs)} == EXPECTED
    assert toolchain._started is None
