"""gittree's names against git itself: `git update-index` (verify_path, with core.protectHFS and
core.protectNTFS on) refuses exactly the names gittree calls unsafe."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from git_agent import gittree

NAMES = [
    # .git as NTFS, HFS+ and case-insensitive filesystems spell it
    ".git", ".GIT", ".Git", ".git.", ".git ", ".git. .", ".git::$INDEX_ALLOCATION", ".git:x",
    "git~1", "GIT~1", "git~1.", "git~1 ", "git~1:stream", ".git\\hooks",
    ".g\u200cit", "\ufeff.git", ".gi\u200dt", ".GI\u206at", ".git\u200e",
    "foo\\.git", "foo\\git~1", "a\\b\\.GIT.", "a\\.gitx",
    # near misses: ordinary names git accepts
    ".gitignore", ".gitx", ".git-x", "git", "git~2", "git~10", "x.git", ".g.it", "..git",
    ".gi\u00a0t", "\u200c", ".gitmodules", ".gitattributes", "gitmod~1", "gi7eba~1",
    ".git\xe9", "foo", "a~1", "\u0130.git",
]
# HFS+ ends a name at a malformed character, as git does: these are .git there
RAW_NAMES = [
    b".git\xff", b".git\xef\xbf\xbf", b".git\xef\xbf\xbe", b".g\xe2\x80\x8cit\xff",
    b".git\xed\xa0\x80", b".git\xc0\x80", b".git\xf8\x88\x80\x80\x80", b".gi\xfft",
    b"\xff.git", b".GIT\xff", b".git\xc3",
]
MODULES = [
    ".gitmodules", ".GITMODULES", ".gitmodules.", ".gitmodules ", ".gitmodules:x",
    "gitmod~1", "GITMOD~4", "gitmod~1 .", "gi7eba~1", "gi7eba~9", "gi7eb~12", "gi7e~123",
    ".gitmod\u200cules", ".gitmodules\uffff", "a\\.gitmodules", "a\\gitmod~2",
    # near misses
    "gitmod~5", "gitmod~0", "gitmodules", ".gitmodulesx", "gi7ebb~1", "gi7eba~", "gi7eba1",
    ".gitmodule", "x", "gitmo~1", "a\\.gitmodules\\b",
]
RAW_MODULES = [b".gitmodules\xff", b".gitmodules\xed\xb0\x80", b".gitmodule\xffs"]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("gittree")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def git_refuses(repo: Path, mode: str, name: bytes) -> bool:
    blob = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # the empty blob (not needed on disk)
    index = repo / ".git" / "probe-index"
    p = subprocess.run(
        [b"git", b"-c", b"core.protectHFS=true", b"-c", b"core.protectNTFS=true",
         b"update-index", b"--add", b"--info-only", b"--cacheinfo",
         f"{mode},{blob},".encode() + name],
        cwd=repo, capture_output=True, env={**os.environ, "GIT_INDEX_FILE": str(index)},
    )
    index.unlink(missing_ok=True)
    return p.returncode != 0


@pytest.mark.parametrize("name", [n.encode() for n in NAMES] + RAW_NAMES, ids=repr)
def test_dotgit_is_what_git_refuses(index: Path, name: bytes) -> None:
    assert gittree.is_dotgit(name) == git_refuses(index, "100644", name)


@pytest.mark.parametrize("name", [n.encode() for n in MODULES] + RAW_MODULES, ids=repr)
def test_dotgitmodules_is_what_git_refuses_as_a_symlink(index: Path, name: bytes) -> None:
    assert not git_refuses(index, "100644", name) or gittree.is_dotgit(name)
    link_refused = gittree.is_dotgit(name) or gittree.is_dotgitmodules(name)
    assert link_refused == git_refuses(index, "120000", name)


def git_refuses_all(repo: Path, mode: str, names: list[bytes]) -> set[bytes]:
    """The names git refuses, asked in one `update-index --index-info` (which skips them)."""
    blob = b"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    data = b"".join(mode.encode() + b" " + blob + b"\t" + n + b"\n" for n in names)
    index = repo / ".git" / "probe-index"
    p = subprocess.run(
        ["git", "-c", "core.protectHFS=true", "-c", "core.protectNTFS=true", "update-index",
         "--add", "--info-only", "--index-info"], input=data, cwd=repo, capture_output=True,
        env={**os.environ, "GIT_INDEX_FILE": str(index)}, check=True)
    index.unlink(missing_ok=True)
    return {line.removeprefix(b"Ignoring path ") for line in p.stderr.splitlines()
            if line.startswith(b"Ignoring path ")}


def test_names_made_of_the_pieces_agree_with_git(index: Path) -> None:
    """Every name of up to three pieces of the spellings, against git (files and symlinks).

    gittree is stricter in one case: after a backslash that starts the name. verify_path
    skips that one; git fsck (hasDotgit) checks after every backslash, and so does gittree."""
    pieces = [b".", b"git", b"GIT", b"~1", b"~5", b"gitmod", b"ules", b" ", b":", b"\\",
              b"\xff", b"\xe2\x80\x8c", b"\xef\xbf\xbf", b"x", b"gi7eba", b"modules"]
    names = sorted({a + b + c for a in pieces for b in pieces for c in [b"", *pieces]}
                   - {b".", b".."})
    refused = git_refuses_all(index, "100644", names)
    assert len(refused) >= 30  # the oracle answers (.git, .GIT., git~1:, .\u200cgit...)
    differ = [n for n in names if gittree.is_dotgit(n) != (n in refused)]
    assert [n for n in differ if not (n.startswith(b"\\") and n not in refused)] == []
    refused = git_refuses_all(index, "120000", names)
    differ = [n for n in names
              if (gittree.is_dotgit(n) or gittree.is_dotgitmodules(n)) != (n in refused)]
    assert [n for n in differ if not (n.startswith(b"\\") and n not in refused)] == []


def test_the_quick_no_of_dotgit_checks_agrees_with_the_full_rules() -> None:
    """is_dotgit / is_dotgitmodules answer no at once for an ASCII name without "git" (or
    "gitmodules" and "~"): never where git's full rules would say yes."""
    import itertools
    import random

    from git_agent import gittree as g

    def slow_git(n: bytes) -> bool:
        return any(g._ntfs_dotgit(x) for x in g._after_backslashes(n)) or g._hfs(n, ".git")

    def slow_mod(n: bytes) -> bool:
        return any(g._ntfs_dot_generic(x, b"gitmodules", b"gi7eba")
                   for x in g._after_backslashes(n)) or g._hfs(n, ".gitmodules")

    rnd = random.Random(7)
    alphabet = b"gitGIT.~1234 \\modulesMODULES7ebax:"
    names = {bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 14)))
             for _ in range(40_000)}
    names |= {b"".join(p) for p in itertools.product([b".", b"", b"\\"], [b"git", b"GiT", b"gi"],
                                                     [b"", b"~1", b"modules", b". ", b"::$x"])}
    names |= {b".GitModules", b"gitmod~1", b"GI7EBA~1", b"gi7eb~12", b"x\\.gitmodules . "}
    for n in names:
        assert g.is_dotgit(n) == slow_git(n), n
        assert g.is_dotgitmodules(n) == slow_mod(n), n
    assert sum(map(slow_git, names)) > 5 and sum(map(slow_mod, names)) > 3  # it tries some
