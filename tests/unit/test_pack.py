"""pack.Writer: objects past a few become one pack that git itself reads and verifies."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from git_agent.capture import pack


def _repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path / "r")], check=True)
    return tmp_path / "r"


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout


def test_few_objects_stay_loose(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    written: list[tuple[int, bytes]] = []

    def loose(typ: int, data: bytes) -> bytes:
        written.append((typ, data))
        return pack.object_id(typ, data)

    w = pack.Writer(repo / ".git" / "objects", loose)
    ids = [w.write(pack.OBJ_BLOB, b"%d\n" % i) for i in range(5)]
    assert w.write(pack.OBJ_BLOB, b"0\n") == ids[0] and len(w) == 5  # no duplicate
    w.finish()
    assert [d for _, d in written] == [b"%d\n" % i for i in range(5)]
    assert os.listdir(repo / ".git" / "objects" / "pack") == []


def test_many_objects_one_pack_git_reads(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    w = pack.Writer(repo / ".git" / "objects", lambda t, d: pytest.fail("no loose object"))
    blobs = [os.urandom(i * 37 % 5000) for i in range(300)] + [b"", os.urandom(200_000),
                                                              b"text\n" * 40_000]
    ids = [w.write(pack.OBJ_BLOB, b) for b in blobs]
    entries = sorted((b"f%03d" % i, oid) for i, oid in enumerate(ids[:10]))
    tree = w.write(pack.OBJ_TREE, b"".join(b"100644 %s\0%s" % e for e in entries))
    commit = w.write(pack.OBJ_COMMIT, b"tree %s\nauthor a <a> 1 +0000\ncommitter a <a> 1 +0000"
                     b"\n\nm\n" % tree.hex().encode())
    w.finish()
    files = sorted(os.listdir(repo / ".git" / "objects" / "pack"))
    assert len(files) == 2 and files[0].endswith(".idx") and files[1].endswith(".pack")
    _git(repo, "verify-pack", str(repo / ".git" / "objects" / "pack" / files[0]))
    for oid, data in zip(ids, blobs, strict=True):
        assert _git(repo, "cat-file", "blob", oid.hex()) == data
    assert _git(repo, "rev-parse", f"{commit.hex()}^{{tree}}").strip() == tree.hex().encode()
    _git(repo, "update-ref", "refs/heads/x", commit.hex())
    _git(repo, "fsck", "--strict", "--no-dangling")


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    w = pack.Writer(repo / ".git" / "objects", lambda t, d: pytest.fail("no loose object"))
    for i in range(pack.LOOSE_LIMIT + 5):
        w.write(pack.OBJ_BLOB, b"%d" % i)
    w.abort()
    assert os.listdir(repo / ".git" / "objects" / "pack") == []
