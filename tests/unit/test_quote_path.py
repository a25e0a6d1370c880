"""ui.quote_path quotes a path as git does with core.quotePath (git is the oracle)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from git_agent.ui import quote_path

NAMES = [b"plain.txt", b"sp ace", b"a\rb", b"a\\b", b'x"y', "\u00e9t\u00e9".encode(),
         b"e\x1b[2K\x7f\x01\t\n\x07\x08\x0b\x0c", b"\xff\xfe", b"tab\tx",
         b".github/workflows/\r\x1b[2K\x1b[1A\x1b[2Kno risky files\x1b[8m"]


def test_quote_path_is_gits_quoting(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for n in NAMES:
        d = tmp_path / os.fsdecode(n).rpartition("/")[0] if b"/" in n else tmp_path
        d.mkdir(parents=True, exist_ok=True)
        (tmp_path / os.fsdecode(n)).write_bytes(b"x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    raw = subprocess.run(["git", "-C", str(tmp_path), "ls-files", "-z"], check=True,
                         capture_output=True).stdout.split(b"\0")[:-1]
    quoted = subprocess.run(["git", "-C", str(tmp_path), "-c", "core.quotePath=true",
                             "ls-files"], check=True, capture_output=True).stdout
    assert sorted(raw) == sorted(NAMES)
    assert [quote_path(n) for n in raw] == quoted.decode("ascii").splitlines()


def test_no_quoted_path_holds_a_control_byte_or_non_ascii() -> None:
    for n in NAMES:
        q = quote_path(n)
        assert q.isascii() and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in q), q
    assert quote_path("plain/x.y") == "plain/x.y"
