"""mergeback/hunks.py against git: hunks parsed from `git diff`, laid back onto the base, give
what `git apply` of the same hunks gives."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from git_agent.mergeback import hunks as H


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                          check=True).stdout


def diff_of(tmp: Path, old: bytes, new: bytes) -> H.FileDiff:
    (tmp / "a").write_bytes(old)
    (tmp / "b").write_bytes(new)
    out = subprocess.run(["git", "diff", "--no-index", "--no-color", "a", "b"], cwd=tmp,
                         capture_output=True).stdout
    return H.parse(out)


def git_apply(tmp: Path, old: bytes, patch: bytes) -> bytes:
    (tmp / "a").write_bytes(old)
    git(tmp, "apply", "--unidiff-zero", "-", input=patch)
    return (tmp / "a").read_bytes()


CASES = [
    (b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", b"one\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\nX\n"),
    (b"a\nb\nc", b"a\nB\nc"),  # no newline at the end, on both sides
    (b"a\nb\nc\n", b"a\nb\nc"),  # the newline at the end removed
    (b"a\nb\n", b"x\na\nb\ny\n"),  # lines added at both ends
    (b"a\nb\nc\nd\n", b"a\nd\n"),  # lines removed
]


@pytest.mark.parametrize(("old", "new"), CASES)
def test_all_hunks_give_the_new_file_and_each_alone_what_git_apply_gives(
        tmp_path: Path, old: bytes, new: bytes) -> None:
    d = diff_of(tmp_path, old, new)
    assert H.compose(old, [b for h in d.hunks for b in h.blocks()]) == new
    pieces = [s for h in d.hunks for s in (h.split() if h.splittable() else [h])]
    assert H.compose(old, [b for h in pieces for b in h.blocks()]) == new
    for h in pieces:  # one hunk alone, as git applies its text to the base
        patch = b"--- a/a\n+++ b/a\n" + h.text()
        assert H.compose(old, h.blocks()) == git_apply(tmp_path, old, patch)


def test_an_edited_hunk_is_checked_against_the_base(tmp_path: Path) -> None:
    old, new = CASES[0]
    d = diff_of(tmp_path, old, new)
    h = d.hunks[0]
    text = H.edit_text(h)
    assert text.startswith(b"# Manual hunk edit mode") and b"\n-1\n+one\n" in text
    block = H.parse_edit(h, old, text.replace(b"+three\n", b"+3, edited\n"))
    assert block is not None
    assert H.compose(old, [block]).startswith(b"one\n2\n3, edited\n4\n")
    with pytest.raises(H.EditRejected):  # a context line changed: not the base any more
        H.parse_edit(h, old, text.replace(b"\n 2\n", b"\n two\n"))
    assert H.parse_edit(h, old, b"# all gone\n") is None
