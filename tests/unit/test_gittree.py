"""gittree's names against git itself: `git update-index` (verify_path, with core.protectHFS and
core.protectNTFS on) refuses exactly the names gittree calls unsafe."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from git_agent import gittree

NAMES = [
    # .git as NTFS, HFS+ and case-insensitive filesystems spell it
    ".git", ".GIT", ".Git", ".git.", ".git ", ".git. .", ".git::$INDEX_ALLOCATION", ".git:x",
    "git~1", "GIT~1", "git~1.", "git~1 ", "git~1:stream", ".git\\hooks",
    ".g\u200cit", "\ufeff.git", ".gi\u200dt", ".GI\u206at", ".git\u200e",
    # near misses: ordinary names git accepts
    ".gitignore", ".gitx", ".git-x", "git", "git~2", "git~10", "x.git", ".g.it", "..git",
    ".gi\u00a0t", "\u200c", ".gitmodules", ".gitattributes", "gitmod~1", "gi7eba~1",
    ".git\xe9", "foo", "a~1",
]
MODULES = [
    ".gitmodules", ".GITMODULES", ".gitmodules.", ".gitmodules ", ".gitmodules:x",
    "gitmod~1", "GITMOD~4", "gitmod~1 .", "gi7eba~1", "gi7eba~9", "gi7eb~12", "gi7e~123",
    ".gitmod\u200cules",
    # near misses
    "gitmod~5", "gitmod~0", "gitmodules", ".gitmodulesx", "gi7ebb~1", "gi7eba~", "gi7eba1",
    ".gitmodule", "x", "gitmo~1",
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("gittree")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def git_refuses(repo: Path, mode: str, name: str) -> bool:
    blob = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # the empty blob (not needed on disk)
    p = subprocess.run(
        ["git", "-c", "core.protectHFS=true", "-c", "core.protectNTFS=true", "update-index",
         "--add", "--info-only", "--cacheinfo", f"{mode},{blob},{name}"],
        cwd=repo, capture_output=True,
    )
    subprocess.run(["git", "rm", "-q", "--cached", "--ignore-unmatch", "--", name],
                   cwd=repo, capture_output=True)
    return p.returncode != 0


@pytest.mark.parametrize("name", NAMES)
def test_dotgit_is_what_git_refuses(index: Path, name: str) -> None:
    assert gittree.is_dotgit(name.encode()) == git_refuses(index, "100644", name)


@pytest.mark.parametrize("name", MODULES)
def test_dotgitmodules_is_what_git_refuses_as_a_symlink(index: Path, name: str) -> None:
    assert not git_refuses(index, "100644", name)  # a plain file is fine
    assert gittree.is_dotgitmodules(name.encode()) == git_refuses(index, "120000", name)


def test_names_that_are_not_utf8_are_not_hfs_spellings() -> None:
    assert not gittree.is_dotgit(b".g\xffit")
    assert gittree.is_dotgit(b".GIT\xff") is False
