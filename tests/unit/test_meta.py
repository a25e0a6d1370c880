"""meta.json: one typed record, one reader, one writer; a field of the wrong type reads as unset."""

from __future__ import annotations

import json
from pathlib import Path

from git_agent.session import meta
from git_agent.session.meta import Meta, RunRecord


def test_a_written_meta_reads_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    m = Meta(name="fix", worktree="/w", created=1.5,
             last_run=RunRecord(command=["claude", "-p"], start=2.0, end=3.0, exit_status=0,
                                net="none"),
             capture_base="a" * 40, capture_tip="b" * 40, captured_at=4.0)
    meta.write(path, m)
    assert meta.read(path) == m
    assert json.loads(path.read_text())["last_run"]["command"] == ["claude", "-p"]
    assert not list(tmp_path.glob(".meta.*"))  # the temporary file was renamed over


def test_replace_makes_a_copy(tmp_path: Path) -> None:
    m = Meta(name="x")
    n = m.replace(created=5.0)
    assert m.created is None and n.created == 5.0 and n.name == "x"


def test_missing_broken_or_mistyped_meta_reads_as_unset(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    assert meta.read(path) == Meta()
    path.write_text("{not json")
    assert meta.read(path) == Meta()
    path.write_text("[1, 2]")
    assert meta.read(path) == Meta()
    path.write_text(json.dumps({"name": 3, "created": "yesterday", "capture_tip": ["x"],
                                "last_run": {"command": "sh -c x", "end": True,
                                             "exit_status": 1.5, "start": 7}}))
    m = meta.read(path)
    assert (m.name, m.created, m.capture_tip) == (None, None, None)
    assert m.last_run == RunRecord(command=[], start=7, end=None, exit_status=None, net=None)
    path.write_text(json.dumps({"last_run": {"command": [1]}}))
    assert meta.read(path).last_run is None  # nothing trustworthy left in it
