"""What `git agent run` imports before bwrap starts, and the small helpers that keep it lean.

Launch time is mostly Python's imports (docs/performance.md): a module that drags in click,
pygit2, dataclasses, typing, hashlib, shutil or platform would cost the agent's start several
milliseconds each. The benchmark measures the time; this checks the cause.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from git_agent import proc
from git_agent.record import Record
from git_agent.sandbox.mounts import Bind, MountPlan, Tmpfs
from git_agent.session import store

# What run.main imports before bwrap starts (stale_paths reads a resumed session with overlay).
LAUNCH_PATH = (
    "git_agent.__main__", "git_agent.cli.runargs", "git_agent.commands.run",
    "git_agent.sandbox.landlock", "git_agent.sandbox.seccomp", "git_agent.capture.overlay",
    "git_agent.capture.background",
)
HEAVY = ("click", "pygit2", "pathspec", "dataclasses", "typing", "hashlib", "shutil",
         "platform", "inspect", "tempfile")


def test_the_launch_path_imports_nothing_heavy() -> None:
    code = (
        "import importlib, json, sys\n"
        "before = set(sys.modules)\n"  # what Python's start-up (site, .pth hooks) loaded
        f"for m in {LAUNCH_PATH!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    root = Path(__file__).resolve().parents[2]  # -c: the source tree comes first on sys.path
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                         cwd=root).stdout
    loaded = set(json.loads(out))
    assert set(LAUNCH_PATH) <= loaded
    assert sorted(loaded & set(HEAVY)) == []


def test_fast_parse_keeps_click_out() -> None:
    from git_agent.cli import runargs

    assert runargs.fast_parse(["-s", "x", "--net", "none", "--", "true"]) is not None
    assert runargs.fast_parse(["-h"]) is None  # help is click's


def test_records_compare_hash_and_show_by_value() -> None:
    a, b = Bind(Path("/a"), Path("/b")), Bind(Path("/a"), Path("/b"), ro=True)
    assert a == b and hash(a) == hash(b) and a in [b]
    assert a != Bind(Path("/a"), Path("/b"), ro=False)
    assert a != Tmpfs(Path("/a"))  # another type, even with equal first fields
    assert repr(Tmpfs(Path("/x"), mode=0o700)) == "Tmpfs(dest=PosixPath('/x'), mode=448)"
    plan = MountPlan()
    assert plan == MountPlan() and plan.mounts is not MountPlan().mounts  # no shared defaults


def test_a_record_refuses_an_unknown_field() -> None:
    class Point(Record):
        __slots__ = ("x",)

        def __init__(self, x: int):
            self.x = x

    p = Point(1)
    try:
        p.y = 2  # type: ignore[attr-defined]
    except AttributeError:
        pass
    else:
        raise AssertionError("a record took a field it does not declare")


def test_the_store_digest_is_sha256() -> None:
    for data in (b"", b"/home/u/project", "/tmp/é x".encode()):
        assert store._sha256(data) == hashlib.sha256(data).hexdigest()


def test_which_finds_programs_in_absolute_path_dirs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    for d in (here, there):
        d.mkdir()
        exe = d / "tool"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    (there / "notexec").write_text("")
    (there / "adir").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", os.pathsep.join(["", "here", str(there)]))
    assert proc.which("tool") == str(there / "tool")  # not ./tool, not here/tool
    assert proc.which("notexec") is None
    assert proc.which("adir") is None
    monkeypatch.setenv("PATH", "here")
    assert proc.which("tool") is None
