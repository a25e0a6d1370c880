"""security.md, "What comes back", rule 3 (risky files are named before they are written), with
the assessment kept in the session's folder (mergeback/assessed.py): it is a cache, never a
source of truth. Review and apply answer the same with it, without it, with a damaged one, and
after the user's git config changed (another key: computed again, never the stale answer).
The plain rules are the oracle: each answer is compared with one computed with no file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.mergeback.conftest import Work

AGENT = ("printf 'a\\0b' > blob.bin && ln -s /etc/passwd link && "
         "echo '{\"scripts\": {\"x\": \"y\"}}' > package.json && mkdir -p tools/hooks && "
         "echo 'echo hi' > tools/hooks/pre-commit && echo more >> README.md && rm docs/c.md")


def _kept(work: Work) -> Path:
    (folder,) = (work.actor.home / ".local/state/git-agent").glob("*/sessions/s")
    return folder / "assessment"


def _risks(work: Work) -> dict[str, list[str]]:
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    return {f["path"]: f["risks"] for f in files}


def _fresh(work: Work) -> dict[str, list[str]]:
    """The answer computed from the rules alone (no stored assessment to read)."""
    _kept(work).unlink(missing_ok=True)
    return _risks(work)


def test_risky_files_are_named_before_they_are_written_with_the_stored_assessment(
        work: Work) -> None:
    work.run(AGENT)
    kept = _kept(work)
    assert kept.is_file()  # made by the run's capture, for the next review
    stamp = kept.stat().st_mtime_ns
    got = _risks(work)
    assert kept.stat().st_mtime_ns == stamp  # read, not made again
    assert got == _fresh(work)
    assert any(r.startswith("binary file") for r in got["blob.bin"])
    assert any(r.startswith("symlink to an absolute path") for r in got["link"])
    assert any("scripts" in r for r in got["package.json"])
    assert got["README.md"] == []
    assert kept.is_file()  # the review that found none kept its own


def test_risky_files_are_named_before_they_are_written_after_the_config_changed(
        work: Work) -> None:
    work.run(AGENT)
    assert _kept(work).is_file()
    before = _risks(work)
    assert not any("core.hooksPath" in r for r in before["tools/hooks/pre-commit"])
    work.git("config", "core.hooksPath", "tools/hooks")  # after the capture assessed it
    after = _risks(work)
    assert any("core.hooksPath" in r for r in after["tools/hooks/pre-commit"])
    assert after == _fresh(work)
    p = work.agent("apply", "s", "--", "tools/hooks/pre-commit")  # no --yes: refused
    assert p.returncode != 0 and "core.hooksPath" in p.stderr
    assert not (work.root / "tools/hooks/pre-commit").exists()


def test_risky_files_are_named_before_they_are_written_whatever_the_stored_file_says(
        work: Work) -> None:
    work.run(AGENT)
    kept = _kept(work)
    want = _risks(work)
    data = kept.read_bytes()
    damaged = {  # each is computed again, never trusted
        "risks emptied, checksum kept": data.replace(b'"risks": {', b'"risks": {"9": [], '),
        "cut short": data[: len(data) // 2],
        "another key": data.replace(data.split(b" ")[2], b"0" * 64, 1),
        "not ours": b"garbage\n",
    }
    for what, bad in damaged.items():
        assert bad != data, what
        kept.write_bytes(bad)
        work.actor.own(kept)
        assert _risks(work) == want, what
        assert kept.read_bytes() != bad, what  # replaced by the answer computed
    p = work.agent("apply", "s")  # no terminal, no --yes: the risky files refuse it
    assert p.returncode != 0 and "blob.bin" in p.stderr
