"""overlay.classify: both whiteout forms, both opaque prefixes, specials; walk on a fake upper."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from git_agent.capture import overlay
from git_agent.capture.overlay import Kind


def st(mode: int, *, size: int = 0, rdev: int = 0) -> os.stat_result:
    # st_mode, st_ino, st_dev, st_nlink, st_uid, st_gid, st_size, atime, mtime, ctime
    return os.stat_result((mode, 1, 1, 1, 0, 0, size, 0, 0, 0), {"st_rdev": rdev})


REG, DIR, LNK = stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777


@pytest.mark.parametrize("prefix", ["trusted.", "user."])
def test_opaque_and_xattr_whiteout_forms(prefix: str) -> None:
    assert overlay.classify(st(DIR), {prefix + "overlay.opaque": b"y"}) is Kind.OPAQUE_DIR
    # "x" only says the dir holds xattr whiteouts: still merged with the lower dir
    assert overlay.classify(st(DIR), {prefix + "overlay.opaque": b"x"}) is Kind.DIR
    assert overlay.classify(st(REG), {prefix + "overlay.whiteout": b""}) is Kind.WHITEOUT
    assert overlay.classify(st(REG, size=3), {prefix + "overlay.whiteout": b""}) is Kind.FILE


def test_plain_kinds() -> None:
    assert overlay.classify(st(stat.S_IFCHR), {}) is Kind.WHITEOUT
    assert overlay.classify(st(stat.S_IFCHR, rdev=os.makedev(1, 3)), {}) is Kind.SKIP
    assert overlay.classify(st(stat.S_IFBLK), {}) is Kind.SKIP
    assert overlay.classify(st(stat.S_IFIFO), {}) is Kind.SKIP
    assert overlay.classify(st(stat.S_IFSOCK), {}) is Kind.SKIP
    assert overlay.classify(st(REG), {}) is Kind.FILE
    assert overlay.classify(st(LNK), {"user.overlay.opaque": b"y"}) is Kind.SYMLINK
    assert overlay.classify(st(DIR), {}) is Kind.DIR
    assert overlay.classify(st(DIR), {"user.other": b"y"}) is Kind.DIR


def test_walk_fake_upper(tmp_path: Path) -> None:
    up = tmp_path / "up"
    (up / ".git" / "objects").mkdir(parents=True)
    (up / "d" / ".git").mkdir(parents=True)
    (up / "d" / "f").write_text("x")
    (up / ".wh.name").write_text("")  # a regular file with that name is a plain file
    os.symlink("/etc/passwd", up / "link")
    os.mkfifo(up / "fifo")
    os.mknod(up / "gone", stat.S_IFCHR | 0o600, 0)  # needs root or CAP_MKNOD
    os.mkdir(up / "opq")
    os.setxattr(up / "opq", "user.overlay.opaque", b"y")
    report = overlay.Walk()
    got = [(c.path, c.kind) for c in overlay.walk(up, report=report)]
    assert got == [
        (b".wh.name", Kind.FILE),
        (b"d", Kind.DIR),
        (b"d/.git", Kind.DIR),  # only the top-level .git is the worktree's
        (b"d/f", Kind.FILE),
        (b"gone", Kind.WHITEOUT),
        (b"link", Kind.SYMLINK),
        (b"opq", Kind.OPAQUE_DIR),
    ]
    assert len(report.warnings) == 1 and "fifo" in report.warnings[0]
    assert overlay.count(up) == 8


def test_merged_dir(tmp_path: Path) -> None:
    low, up = tmp_path / "low", tmp_path / "up"
    (low / "refs" / "heads").mkdir(parents=True)
    (low / "refs" / "heads" / "main").write_text("a\n")
    (low / "refs" / "heads" / "gone").write_text("b\n")
    (low / "HEAD").write_text("ref: refs/heads/main\n")
    (low / "opq").mkdir()
    (low / "opq" / "x").write_text("x")
    (up / "refs" / "heads").mkdir(parents=True)
    (up / "refs" / "heads" / "new").write_text("c\n")
    os.mknod(up / "refs" / "heads" / "gone", stat.S_IFCHR | 0o600, 0)
    (up / "opq").mkdir()
    os.setxattr(up / "opq", "user.overlay.opaque", b"y")
    m = overlay.MergedDir(upper=up, lower=low)
    assert m.read("HEAD") == b"ref: refs/heads/main\n"
    assert m.read("refs/heads/main") == b"a\n"
    assert m.read("refs/heads/new") == b"c\n"
    assert m.read("refs/heads/gone") is None
    assert m.read("opq/x") is None
    assert m.read("refs/heads") is None

