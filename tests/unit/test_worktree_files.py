"""worktree_files: a path changed between apply's reading and its writing is refused, and the
journal's undo gives back the very entries it replaced or removed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from git_agent.gittree import BLOB as MODE_FILE
from git_agent.mergeback import worktree_files as files
from git_agent.mergeback.worktree_files import Entry


def test_a_path_changed_since_apply_read_it_is_refused_and_all_is_undone(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for name in ("done", "edited", "gone"):
        (work / name).write_bytes(name.encode())
    root = files.open_root(work)
    try:
        read = {n: files.read_signed(root, n.encode()) for n in ("done", "edited", "gone", "new")}
        journal = files.Journal(root, tmp_path / "spare")
        ino = os.lstat(work / "done").st_ino
        files.write(root, b"done", Entry(MODE_FILE, b"agent"), None, journal,
                    read["done"][0], read["done"][2])
        files.delete(root, b"gone", journal, read["gone"][0], read["gone"][2])
        assert (work / "done").read_bytes() == b"agent" and not (work / "gone").exists()
        (work / "edited").write_bytes(b"the user's edit, meanwhile")
        (work / "new").write_bytes(b"a file of the user's, meanwhile")
        for name in ("edited", "new"):
            with pytest.raises(files.Changed):
                files.write(root, name.encode(), Entry(MODE_FILE, b"agent"), None, journal,
                            read[name][0], read[name][2])
        with pytest.raises(files.Changed):
            files.delete(root, b"edited", journal, read["edited"][0], read["edited"][2])
        assert journal.undo() == []
    finally:
        os.close(root)
    assert {p.name: p.read_bytes() for p in work.iterdir()} == {
        "done": b"done", "gone": b"gone", "edited": b"the user's edit, meanwhile",
        "new": b"a file of the user's, meanwhile"}
    assert os.lstat(work / "done").st_ino == ino  # put back, not rewritten
    assert not (tmp_path / "spare").exists()


def test_without_a_spare_dir_the_bytes_read_are_written_back(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"yours")
    os.chmod(tmp_path / "f", 0o640)
    root = files.open_root(tmp_path)
    try:
        entry, _, sig = files.read_signed(root, b"f")
        journal = files.Journal(root, None)  # as when it is on another filesystem
        files.write(root, b"f", Entry(MODE_FILE, b"agent"), None, journal, entry, sig)
        files.delete(root, b"f", journal, Entry(MODE_FILE, b"agent"),
                     files.sig(os.lstat(tmp_path / "f")))
        assert not (tmp_path / "f").exists()
        assert journal.undo() == []
    finally:
        os.close(root)
    assert (tmp_path / "f").read_bytes() == b"yours"
    assert os.stat(tmp_path / "f").st_mode & 0o7777 == 0o640


def test_the_lock_s_holder_is_trusted_only_while_its_pid_lives(tmp_path: Path) -> None:
    """What a holder wrote in the session's lock file counts only while the lock is held and
    its writer lives: a killed holder's text, or none yet, is "busy" (never "run", which apply
    would take for a running agent and write beside it)."""
    import subprocess
    import sys

    from git_agent import session

    s = session.Session(name="s", dir=tmp_path)
    assert s.holder() is None
    hold = ("import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(30)\n")
    for text, want in ((b"", "busy"), (b"apply 999999999\n", "busy"),
                       (f"run {os.getpid()}\n".encode(), "run"), (b"drop x\n", "busy")):
        s.lock_path.write_bytes(text)
        p = subprocess.Popen([sys.executable, "-c", hold, str(s.lock_path)],
                             stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout is not None and p.stdout.readline() == "held\n"
            assert s.holder() == want, text
        finally:
            p.kill()
            p.wait()
    assert s.holder() is None  # released with its holder, whatever the text says


DEEP = 1500  # deeper than Python's recursion limit


def _chain(top: Path, depth: int, leaf: bool) -> bytes:
    """depth nested dirs d/d/... under top (made by fd: the path outgrows PATH_MAX's comfort),
    with a file at the bottom when leaf; returns the bottom dir's path from top."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    if leaf:
        os.close(os.open("leaf", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd))
    os.close(fd)
    return b"/".join([b"d"] * depth)


def test_walks_do_not_recurse_on_depth(tmp_path: Path) -> None:
    """security.md, "What comes back", rule 4: any depth. files_below, the empty-dirs removal
    apply does (with its undo) and consume's walk of the upper, on a 1,500-deep tree."""
    from git_agent.mergeback import consume, store_walk

    work = tmp_path / "work"
    work.mkdir()
    try:
        bottom = _chain(work, DEEP, leaf=True)
        (work / "top").mkdir()
        root = files.open_root(work)
        try:
            assert list(files.files_below(root, b"d")) == [bottom + b"/leaf"]
            assert consume._leaves(root, b"d") == {bottom + b"/leaf"}
            assert not files._only_dirs(root, b"d")
            with files.beneath.opened_dir(root, bottom) as fd:
                os.unlink(b"leaf", dir_fd=fd)
            assert list(files.files_below(root, b"d")) == [bottom + b"/"]  # an empty dir
            assert files._only_dirs(root, b"d")
            journal = files.Journal(root, None)
            files._rmdirs(root, b"d", b"d", journal)
            assert sorted(os.listdir(work)) == ["top"]
            assert journal.undo() == []  # made again, parents first
            assert list(files.files_below(root, b"d")) == [bottom + b"/"]
        finally:
            os.close(root)
        store_walk.remove_tree(work)  # what drop uses on a session's folder
        assert not work.exists()
    finally:  # pytest's own clean-up of tmp_path recurses on depth: never leave it a deep tree
        subprocess.run(["rm", "-rf", os.fspath(work)], check=True)
