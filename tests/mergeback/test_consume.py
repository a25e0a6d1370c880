"""consume_paths on crafted upper dirs: both whiteout forms, opaque dirs, never resurrecting."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from git_agent.errors import GitAgentError
from git_agent.mergeback.consume import consume_paths


def xattr_ok(tmp_path: Path) -> bool:
    p = tmp_path / "probe"
    p.write_bytes(b"")
    try:
        os.setxattr(p, "user.overlay.probe", b"y")
    except OSError:
        return False
    finally:
        p.unlink()
    return True


@pytest.fixture
def upper(tmp_path: Path) -> Path:
    if not xattr_ok(tmp_path):
        pytest.skip("no user xattrs on this filesystem")
    u = tmp_path / "upper"
    u.mkdir()
    return u


def whiteout(p: Path, char_dev: bool = False) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    if char_dev:
        os.mknod(p, stat.S_IFCHR | 0o000, 0)
    else:
        p.write_bytes(b"")
        os.setxattr(p, "user.overlay.whiteout", b"y")


def write(p: Path, text: str = "x") -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_plain_entries_and_empty_parents(upper: Path) -> None:
    write(upper / "a/b/c.txt")
    write(upper / "a/keep.txt")
    write(upper / "a/.wh.keep")  # a plain name, not a whiteout
    whiteout(upper / "gone.txt")
    assert consume_paths(upper, {b"a/b/c.txt", b"gone.txt"}, {b"a/b/c.txt", b"a/keep.txt",
                                                             b"gone.txt", b"a/.wh.keep"}) == []
    assert sorted(os.listdir(upper)) == ["a"] and sorted(os.listdir(upper / "a")) == [
        ".wh.keep", "keep.txt"]


@pytest.mark.parametrize("char_dev", [False, True])
def test_whiteout_of_a_dir_goes_only_when_all_below_is_consumed(upper: Path,
                                                                char_dev: bool) -> None:
    if char_dev and os.geteuid() != 0:
        pytest.skip("a 0/0 char device whiteout needs root")
    whiteout(upper / "d", char_dev=char_dev)
    changed = {b"d/x", b"d/sub/y"}
    assert consume_paths(upper, {b"d/x"}, changed) == [b"d/x"]
    assert os.path.lexists(upper / "d")  # still hides d/sub/y
    assert consume_paths(upper, {b"d/sub/y"}, changed, settled={b"d/x"}) == []
    assert not os.path.lexists(upper / "d")


def test_opaque_dir(upper: Path) -> None:
    (upper / "o").mkdir()
    os.setxattr(upper / "o", "user.overlay.opaque", b"y")
    write(upper / "o/new.txt")
    write(upper / "o/build.log")  # not a change (ignored): the agent's own
    changed = {b"o/new.txt", b"o/old.txt"}
    assert consume_paths(upper, {b"o/new.txt"}, changed) == [b"o/new.txt"]
    assert (upper / "o/new.txt").exists()  # removing it alone would hide the lower file
    assert consume_paths(upper, changed, changed) == sorted(changed)  # build.log holds it
    assert consume_paths(upper, changed, changed,
                         same_as_worktree=lambda full, p: p == b"o/build.log") == []
    assert not (upper / "o").exists()


def test_refuses_dot_git_and_dot_dot(upper: Path) -> None:
    for bad in (b".git/config", b".GIT/x", b"a/../../etc"):
        with pytest.raises(GitAgentError):
            consume_paths(upper, {bad}, {bad})


def test_rejected_below_covers_take_their_base_version(upper: Path) -> None:
    whiteout(upper / "w")  # the agent deleted w/a and w/b; a is rejected, b stays pending
    assert consume_paths(upper, {b"w/a"}, {b"w/a", b"w/b"},
                         rejected={b"w/a": (0o100644, b"base\n")}) == []
    assert (upper / "w/a").read_text() == "base\n" and sorted(os.listdir(upper / "w")) == ["a"]
    assert os.getxattr(upper / "w", "user.overlay.opaque") == b"y"  # b stays deleted
    (upper / "d").mkdir()  # a dir replacing the lower link d, holding the agent's d/f
    os.setxattr(upper / "d", "user.overlay.opaque", b"y")
    write(upper / "d/f")
    assert consume_paths(upper, {b"d/f"}, {b"d", b"d/f"}, rejected={b"d/f": None}) == []
    assert (upper / "d").is_dir() and os.listdir(upper / "d") == []  # d's deletion pending
    assert consume_paths(upper, {b"d"}, {b"d"}) == []
    assert not (upper / "d").exists()
