"""The credentials found in mounted toolchain dirs: find(1) and the Python walk agree, at any
depth, by name and by known path, links standing for the files they lead to."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from git_agent.sandbox import toolchain


def _tree(home: Path) -> list[Path]:
    files = {
        ".cargo/config.toml": "x", ".cargo/bin/cargo": "x", ".cargo/a/b/c/d/.netrc": "x",
        ".m2/settings.xml": "x", ".m2/repository/settings.xml": "x",  # only .m2/settings.xml
        ".docker/config.json": "x", ".docker/other/config.json": "x",
        ".docker/stash": "x", ".nvm/versions/node/v1/etc/npmrc": "x",
        # a package's own files, not your settings: package dirs are not looked into
        ".nvm/versions/node/v1/lib/node_modules/pkg/.npmrc": "x",
        ".pyenv/versions/3/lib/python3/site-packages/pkg/pip.conf": "x",
    }
    for rel, text in files.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text)
    os.symlink("stash", home / ".docker" / ".dockercfg")  # a link: the file it leads to
    os.symlink("/etc/hostname", home / ".cargo" / "credentials")  # outside: not there inside
    return [home / d for d in (".cargo", ".m2", ".docker", ".nvm", ".pyenv", ".missing")]


EXPECTED = {".cargo/config.toml", ".cargo/a/b/c/d/.netrc", ".m2/settings.xml",
            ".docker/config.json", ".docker/stash", ".nvm/versions/node/v1/etc/npmrc"}


def test_found_at_any_depth_by_name_and_path_links_for_their_files(tmp_path: Path) -> None:
    found = toolchain.find_secrets(_tree(tmp_path))
    assert {str(p.relative_to(tmp_path)) for p in found} == EXPECTED


def test_every_listed_name_and_path_is_found(tmp_path: Path) -> None:
    top = tmp_path / "top"
    want = set()
    for i, rel in enumerate([*toolchain.SECRET_NAMES, *toolchain.SECRET_PATHS]):
        p = top / f"d{i}" / "x" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("secret")
        want.add(p)
        (p.parent / (p.name + ".bak")).write_text("not one")  # a longer name is not one
    assert set(toolchain.find_secrets([top])) == want


def _changed(d: Path, before: int) -> None:
    """Touch d until its ctime moves on from before (a coarse clock may not have ticked)."""
    deadline = time.monotonic() + 10
    while os.stat(d).st_ctime_ns == before and time.monotonic() < deadline:
        os.utime(d)
    assert os.stat(d).st_ctime_ns != before


def test_the_cache_lists_again_only_dirs_that_changed(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain, "RACY_NS", -(10**18))  # trust every dir, however recent
    dirs = _tree(tmp_path / "h")
    cache = tmp_path / "scan.json"
    first = toolchain.find_secrets(dirs, cache=cache)
    assert cache.exists()
    listed: list[str] = []
    real_list = toolchain._list
    monkeypatch.setattr(toolchain, "_list", lambda d: (listed.append(d), real_list(d))[1])
    assert toolchain.find_secrets(dirs, cache=cache) == first
    assert listed == []  # nothing changed: no directory read again
    deep = tmp_path / "h/.cargo/a/b/c"
    before = os.stat(deep).st_ctime_ns
    (deep / "pip.conf").write_text("secret")  # a new one, deep in a cached tree
    _changed(deep, before)
    again = toolchain.find_secrets(dirs, cache=cache)
    assert set(again) == {*first, deep / "pip.conf"}
    assert listed == [str(deep)]


def test_a_dir_changed_within_the_racy_window_is_not_cached(tmp_path: Path) -> None:
    dirs = _tree(tmp_path / "h")  # every dir was just made: all within the window
    cache = tmp_path / "scan.json"
    toolchain.find_secrets(dirs, cache=cache)
    assert not cache.exists() or json.loads(cache.read_text()) == {}


def test_a_broken_cache_is_ignored(tmp_path: Path) -> None:
    dirs = _tree(tmp_path / "h")
    cache = tmp_path / "scan.json"
    cache.write_text('{"x": 1, "' + str(tmp_path / "h/.cargo") + '": [[1, 2, 3], [], []]}')
    found = toolchain.find_secrets(dirs, cache=cache)
    assert {str(p.relative_to(tmp_path / "h")) for p in found} == EXPECTED


def test_install_trees_are_looked_into_a_few_levels_only(tmp_path: Path) -> None:
    """The software a toolchain installed is most of its dirs: an install tree is read
    INSTALL_DEPTH levels deep (a Python's pip.conf, a node's etc/npmrc), no deeper."""
    home = tmp_path
    shallow = [".pyenv/versions/3.11.7/pip.conf", ".nvm/versions/node/v20/etc/npmrc"]
    deep = ".rustup/toolchains/stable/lib/rustlib/src/credentials"
    for rel in [*shallow, deep, ".rustup/settings.toml"]:
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text("x")
    mounts = [home / ".pyenv", home / ".nvm", home / ".rustup"]
    found = {str(p.relative_to(home)) for p in toolchain.find_secrets(mounts)}
    assert found == set(shallow)
    toolchain_depth = toolchain.INSTALL_DEPTH
    assert deep.count("/") - ".rustup/toolchains".count("/") > toolchain_depth
