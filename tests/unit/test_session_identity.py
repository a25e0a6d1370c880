"""session/identity.py: a session belongs to the repository whose id it recorded; one made before
ids were recorded belongs where its base ref is. git is the oracle for the refs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from git_agent import repo, session
from git_agent.session import identity


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


def _repo(root: Path) -> repo.Worktree:
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "commit", "-q", "--allow-empty", "-m", "x")
    return repo.find_worktree(root)


def test_the_id_is_written_once_and_only_as_its_own_ref(hermetic: Path, tmp_path: Path) -> None:
    wt = _repo(tmp_path / "r")
    before = _git(wt.root, "for-each-ref")
    assert identity.current(wt) is None
    first = identity.ensure(wt)
    assert identity.ensure(wt) == first == identity.current(wt)
    after = _git(wt.root, "for-each-ref")
    assert after.replace(f"{first} blob\trefs/agent-id\n", "") == before


def test_a_session_is_stale_in_another_repository(hermetic: Path, tmp_path: Path) -> None:
    wt = _repo(tmp_path / "r")
    s = session.get(wt, "s")
    session.create(wt, s, repo_id=identity.ensure(wt))
    assert not identity.is_stale(wt, s)
    _git(wt.root, "update-ref", "-d", identity.REF)
    identity.ensure(wt)  # a new id: as a repository made anew at this path
    assert identity.is_stale(wt, s)


def test_a_session_from_before_ids_belongs_where_its_base_ref_is(hermetic: Path,
                                                                  tmp_path: Path) -> None:
    wt = _repo(tmp_path / "r")
    s = session.get(wt, "s")
    session.create(wt, s)  # no id recorded: an older git agent made it
    assert identity.is_stale(wt, s)  # nothing of it in this repository
    _git(wt.root, "update-ref", s.base_ref, "HEAD")
    assert not identity.is_stale(wt, s)
