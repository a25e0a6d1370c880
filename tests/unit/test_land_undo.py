"""land_undo: taking back a half-moved `--commit` never follows a link out of the worktree."""

from __future__ import annotations

import os
from pathlib import Path

from git_agent import beneath
from git_agent.mergeback import land_undo


def test_taking_back_a_landing_never_follows_a_symlink_it_made(tmp_path: Path) -> None:
    """A landing that replaced your directory `a` (holding `b`) with a symlink to a directory
    outside, then failed: undoing it removes `a/b` beneath the worktree only, never through
    the link (there, `b` is someone else's file)."""
    root, outside = tmp_path / "wt", tmp_path / "outside"
    root.mkdir()
    (outside / "sub").mkdir(parents=True)
    (outside / "b").write_text("not yours to delete\n")
    (root / "a").symlink_to(outside)
    (root / "c").mkdir()
    (root / "c" / "d").write_text("the landing's\n")
    fd = beneath.open_root(root)
    try:
        land_undo._remove_beneath(fd, b"a/b", os.unlink, directories=False)
        land_undo._remove_beneath(fd, b"a/sub", os.rmdir, directories=True)
        land_undo._remove_beneath(fd, b"c/d", os.unlink, directories=False)
    finally:
        os.close(fd)
    assert (outside / "b").read_text() == "not yours to delete\n"
    assert (outside / "sub").is_dir()
    assert not (root / "c" / "d").exists()  # beneath the root it does remove
