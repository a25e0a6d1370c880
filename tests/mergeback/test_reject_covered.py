"""Rejecting a path below an upper entry that hides a lower one: it leaves the session for good.

Git is the oracle: `review --json` no longer lists the rejected path, a later plain `apply`
does not write it, and the skipped paths are still pending.
"""

from __future__ import annotations

import os

from tests.mergeback.conftest import Work


def _commit_link(work: Work, name: str, target: str) -> None:
    os.symlink(target, work.root / name)
    work.git("add", name)
    work.git("commit", "-qm", name)


def test_reject_below_a_dir_replacing_a_symlink(work: Work) -> None:
    _commit_link(work, "dl", "README.md")
    work.run("echo more >> README.md; rm dl && mkdir dl && echo x > dl/f")
    assert work.review_paths() == ["README.md", "dl", "dl/f"]
    p = work.ok("apply", "-i", "s", input="y\nn\nr\nY\n")  # y README.md, n dl, r dl/f
    assert "[DELETED] dl" in p.stderr and "[NEW] dl/f" in p.stderr
    assert "stays in review" not in p.stderr
    assert work.review_paths() == ["dl"]  # the skipped deletion is still pending
    assert (work.root / "dl").is_symlink()
    work.ok("apply", "s")
    assert not os.path.lexists(work.root / "dl")  # the deletion, and not the rejected dl/f
    assert work.review_paths() == []
    assert work.git("status", "--porcelain").splitlines() == [" M README.md", " D dl"]


def test_rejecting_the_replaced_symlink_but_keeping_its_dir_is_refused(work: Work) -> None:
    _commit_link(work, "dl", "README.md")
    work.run("rm dl && mkdir dl && echo x > dl/f")
    before = work.snapshot()
    p = work.agent("apply", "-i", "s", input="r\nn\n")
    assert p.returncode != 0 and "cannot reject dl and keep dl/f" in p.stderr
    assert work.snapshot() == before and work.review_paths() == ["dl", "dl/f"]
    work.ok("apply", "-i", "s", input="R\n")  # both: the link stays, nothing is left
    assert work.review_paths() == [] and (work.root / "dl").is_symlink()


def test_reject_inside_an_opaque_dir_replacing_a_dir(work: Work) -> None:
    work.run("rm -rf docs/guide; mkdir docs/guide; echo new > docs/guide/a.md;"
             " echo n > docs/guide/n.md")
    order = ["docs/guide/a.md", "docs/guide/deep/b.md", "docs/guide/n.md"]
    assert work.review_paths() == order
    work.ok("apply", "-i", "s", input="r\nn\nr\n")
    assert work.review_paths() == ["docs/guide/deep/b.md"]
    work.run("cat docs/guide/a.md > seen; ls docs/guide >> seen")
    assert work.git("show", "agent/s:seen") == "a\na.md\n"  # the base a.md, no n.md, no deep
    work.ok("apply", "s")
    assert work.review_paths() == []
    assert sorted(os.listdir(work.root / "docs/guide")) == ["a.md"]
    assert (work.root / "docs/guide/a.md").read_text() == "a\n"  # the rejected edit never came
    assert work.git("status", "--porcelain", "--", "docs").splitlines() == [
        " D docs/guide/deep/b.md"]


def test_reject_a_deletion_inside_an_opaque_dir(work: Work) -> None:
    work.run("rm -rf docs/guide; mkdir docs/guide; echo new > docs/guide/a.md")
    work.ok("apply", "-i", "s", input="n\nr\n")  # keep a.md pending, reject deleting deep/b.md
    assert work.review_paths() == ["docs/guide/a.md"]
    work.ok("apply", "s")
    assert work.review_paths() == []
    assert (work.root / "docs/guide/a.md").read_text() == "new\n"
    assert (work.root / "docs/guide/deep/b.md").read_text() == "b\n"


def test_reject_part_of_a_deleted_dir(work: Work) -> None:
    work.run("rm -rf docs/guide")  # one whiteout covers a.md and deep/b.md
    work.ok("apply", "-i", "s", input="r\nn\n")
    assert work.review_paths() == ["docs/guide/deep/b.md"]
    work.run("cat docs/guide/a.md > seen; ls docs/guide >> seen")
    assert work.git("show", "agent/s:seen") == "a\na.md\n"
    work.ok("apply", "s")
    assert work.review_paths() == []
    assert (work.root / "docs/guide/a.md").read_text() == "a\n"
    assert not (work.root / "docs/guide/deep").exists()


def test_reject_a_file_replacing_a_dir(work: Work) -> None:
    work.run("rm -rf docs/guide; echo f > docs/guide")
    order = ["docs/guide", "docs/guide/a.md", "docs/guide/deep/b.md"]
    assert work.review_paths() == order
    before = work.snapshot()
    p = work.agent("apply", "-i", "s", input="n\nr\nn\n")  # reject a deletion under the file
    assert p.returncode != 0 and "cannot reject docs/guide/a.md and keep docs/guide" in p.stderr
    assert work.snapshot() == before and work.review_paths() == order
    work.ok("apply", "-i", "s", input="r\nn\nr\n")  # reject the file and one deletion
    assert work.review_paths() == ["docs/guide/a.md"]
    work.ok("apply", "s")
    assert work.review_paths() == []
    assert (work.root / "docs/guide").is_dir() and not (work.root / "docs/guide/a.md").exists()
    assert (work.root / "docs/guide/deep/b.md").read_text() == "b\n"
