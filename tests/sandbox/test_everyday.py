"""Everyday details of `run`: the worktree keeps its modes inside."""

from __future__ import annotations

from tests.conftest import Actor


def test_the_worktree_root_keeps_its_mode_inside(actor: Actor) -> None:
    repo = actor.make_repo()
    for mode in (0o755, 0o750):
        repo.chmod(mode)
        p = actor.agent("run", "-s", "modes", "--no-capture", "--", "stat", "-c", "%a",
                        ".", ".git", "src", cwd=repo)
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == [f"{mode:o}", f"{(repo / '.git').stat().st_mode & 0o777:o}",
                                    f"{(repo / 'src').stat().st_mode & 0o777:o}"]


def test_a_linked_worktree_root_and_its_git_dir_keep_their_modes(actor: Actor) -> None:
    repo = actor.make_repo()
    linked = actor.base / "linked"
    actor.git("worktree", "add", "-q", str(linked), cwd=repo)
    linked.chmod(0o755)
    (repo / ".git").chmod(0o755)
    p = actor.agent("run", "--no-capture", "--", "sh", "-c",
                    f"stat -c %a . {repo / '.git'}", cwd=linked)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["755", "755"]
