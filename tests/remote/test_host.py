"""The worker's store (remote/host.py) without ssh: the session's worktree is made at the same
absolute path as locally when that path is free there, reused on the next run, and put under
the store when the path is taken by something else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from git_agent.remote import host
from tests.conftest import run_git


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


def _store_with(repo: Path) -> tuple[Path, str, str]:
    repo_id = "a" * 40
    base = run_git("rev-parse", "HEAD", cwd=repo).strip()
    with host.repo_lock(repo_id) as store:
        run_git("--git-dir", str(store), "fetch", "-q", str(repo), "HEAD:refs/agent-base/s",
                cwd=store)
    return store, repo_id, base


def test_the_worktree_is_at_the_local_path_when_it_is_free(repo: Path, data: Path) -> None:
    store, repo_id, base = _store_with(repo)
    want = data / "elsewhere" / "deep" / "repo"  # the local path, free on this "remote"
    got = host._worktree(store, repo_id, "s", want, base)
    assert got == want and (want / "README.md").exists()
    assert run_git("rev-parse", "HEAD", cwd=want).strip() == base
    (want / "README.md").write_text("left behind\n")
    assert host._worktree(store, repo_id, "s", want, base) == want  # reused, reset to base
    assert run_git("status", "--porcelain", cwd=want) == ""


def test_the_worktree_moves_under_the_store_when_the_path_is_taken(repo: Path,
                                                                    data: Path) -> None:
    store, repo_id, base = _store_with(repo)
    got = host._worktree(store, repo_id, "s", repo, base)  # the path holds another repository
    assert got != repo and str(got).startswith(str(host.data_root()))
    assert run_git("rev-parse", "HEAD", cwd=got).strip() == base
    assert run_git("rev-parse", "HEAD", cwd=repo).strip() == base  # untouched
    assert not os.path.exists(repo / ".git" / "worktrees")


def _prepare(repo: Path, sound: bool) -> dict[str, object]:
    from git_agent.remote.worker import Channel

    _store, repo_id, base = _store_with(repo)
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    os.write(w_in, b'{"bytes": 0}\n')  # the client's side: the remote has the base already
    req: dict[str, object] = {"repo_id": repo_id, "base": base, "session": "s",
                              "path": str(repo), "command": ["true"]}
    try:
        return host.prepare(req, Channel(r_in, w_out), sound=lambda: sound)
    finally:
        for fd in (r_in, w_in, r_out, w_out):
            os.close(fd)


def test_prepare_refuses_when_doctor_fails_there(repo: Path, data: Path) -> None:
    """Fail closed: a remote whose doctor fails gets no ticket, so no run can start there."""
    from git_agent.errors import GitAgentError

    with pytest.raises(GitAgentError, match="doctor fails here"):
        _prepare(repo, sound=False)
    tickets = host.data_root() / "tickets"
    assert not tickets.exists() or not list(tickets.iterdir())
    got = _prepare(repo, sound=True)
    assert (tickets / str(got["ticket"])).exists()
    assert oct((tickets / str(got["ticket"])).stat().st_mode & 0o777) == "0o600"


def test_a_second_session_never_shares_the_first_ones_worktree(repo: Path, data: Path) -> None:
    """run --attempts on a remote: S.1 takes the local path, S.2 (same path asked) gets its own
    worktree, so that checking out S.2's base never moves S.1's lower under its agent."""
    store, repo_id, base = _store_with(repo)
    want = data / "elsewhere" / "repo"
    first = host._worktree(store, repo_id, "s.1", want, base)
    (first / "agent-was-here").write_text("s.1's agent works here\n")
    second = host._worktree(store, repo_id, "s.2", want, base)
    assert first == want and second != first
    assert (first / "agent-was-here").exists()  # no checkout -f of s.1's worktree
    assert run_git("rev-parse", "HEAD", cwd=second).strip() == base
    assert host._worktree(store, repo_id, "s.1", want, base) == first  # s.1 keeps its own
    assert host._worktree(store, repo_id, "s.2", want, base) == second
