"""Root and other users' repositories: refused with one line, nothing written; a root run says
that the agent is uid 0 inside (on a terminal, and in doctor)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import Actor
from tests.escape.test_through_git_agent import run_in_pty


def _files_of(root: Path, uid: int) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if os.lstat(p).st_uid == uid:
                out.append(p)
    return out


def test_root_refuses_a_worktree_owned_by_another_user(root_actor: Actor,
                                                       user_actor: Actor) -> None:
    repo = user_actor.make_repo()
    # root trusts it for git (as in many containers), so only git agent stands in the way
    with open(root_actor.home / ".gitconfig", "a") as f:
        f.write("[safe]\n\tdirectory = *\n")
    before = user_actor.git("for-each-ref", cwd=repo)
    p = root_actor.agent("run", "--", "sh", "-c", "echo x > new.txt; git commit -qam x", cwd=repo)
    assert p.returncode != 0
    assert p.stderr == (f"git agent: worktree owned by uid {user_actor.uid}; "
                        "run git agent as that user\n"), p.stderr
    assert _files_of(repo, 0) == []  # nothing of root's in their worktree or .git
    assert user_actor.git("for-each-ref", cwd=repo) == before
    assert not (repo / "new.txt").exists()
    # the owner's own run works
    p = user_actor.agent("run", "--", "sh", "-c", "echo x > new.txt", cwd=repo)
    assert p.returncode == 0, p.stderr


def test_root_refuses_a_linked_worktree_whose_repository_is_another_users(
        root_actor: Actor, user_actor: Actor) -> None:
    repo = user_actor.make_repo()
    with open(root_actor.home / ".gitconfig", "a") as f:
        f.write("[safe]\n\tdirectory = *\n")
    linked = root_actor.base / "linked"
    subprocess.run(["git", "worktree", "add", "-q", "-b", "side", str(linked)], cwd=repo,
                   env=root_actor.env, check=True, capture_output=True)
    p = root_actor.agent("run", "--", "true", cwd=linked)
    assert p.returncode != 0
    assert p.stderr.count("\n") == 1 and f"owned by uid {user_actor.uid}" in p.stderr, p.stderr


def test_a_root_run_says_the_agent_is_uid_0_inside(actor: Actor) -> None:
    repo = actor.make_repo()
    status, out = run_in_pty(actor, ["git", "agent", "run", "--", "id", "-u"], repo)
    assert status == 0, out
    said = "the agent runs as root (uid 0) inside" in out
    assert said == actor.is_root, out
    doctor = actor.agent("doctor", cwd=repo)
    assert ("runs as root (uid 0) inside" in doctor.stdout) == actor.is_root, doctor.stdout


def test_root_refuses_an_agent_home_owned_by_another_user(root_actor: Actor,
                                                         user_actor: Actor) -> None:
    repo = root_actor.make_repo()
    theirs = user_actor.base / "theirhome"  # their shell start-up: would run as uid 0
    theirs.mkdir()
    (theirs / ".bashrc").write_text("echo ran > /tmp/should-not-run\n")
    user_actor.own(theirs)
    state = root_actor.home / ".local/state/git-agent"
    before = sorted(p.name for p in theirs.iterdir())
    for home, owner in ((theirs, theirs), (theirs / "new", theirs), (user_actor.base / "x", None)):
        if owner is None:  # a home of root's, inside a dir of theirs: they could swap it
            home.mkdir()
            owner = user_actor.base
        p = root_actor.agent("run", "--home", str(home), "--", "bash", "-ic", "echo hi > a.txt",
                             cwd=repo)
        assert p.returncode != 0
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("git agent: agent home "), \
            p.stderr
        assert f"{owner} is owned by uid {user_actor.uid}" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
        assert sorted(x.name for x in theirs.iterdir()) == before  # nothing created there
        assert not list(state.glob("*/sessions/*")), list(state.rglob("*"))  # no session
        assert not (repo / "a.txt").exists()
        assert root_actor.git("branch", "--list", "agent/*", cwd=repo) == ""
    # a home of root's own, where only root can change it, works
    mine = root_actor.base / "myhome"
    p = root_actor.agent("run", "--home", str(mine), "--", "sh", "-c", "echo hi > a.txt",
                         cwd=repo)
    assert p.returncode == 0, p.stderr


def test_a_user_is_refused_an_agent_home_of_roots(root_actor: Actor, user_actor: Actor) -> None:
    repo = user_actor.make_repo()
    roots = root_actor.base / "roothome"
    roots.mkdir(mode=0o755)
    p = user_actor.agent("run", "--home", str(roots), "--", "true", cwd=repo)
    assert p.returncode != 0
    assert p.stderr == (f"git agent: agent home {roots}: {roots} is owned by uid 0; use a home "
                        "of your own (--home, git config agent.home)\n"), p.stderr
    assert os.listdir(roots) == []


def test_a_swapped_agent_home_link_is_never_followed(root_actor: Actor, user_actor: Actor
                                                     ) -> None:
    """security.md, "Another user's repository or agent home": --home through a link another
    user owns, re-pointed by them while root's agent runs: the agent home is the directory the
    link led to at the start (checked, mounted, carried back into), never theirs."""
    repo = root_actor.make_repo()
    mine = root_actor.base / "roothome"
    mine.mkdir()
    theirs = user_actor.base / "theirhome"
    theirs.mkdir()
    user_actor.own(theirs)
    link = user_actor.base / "homelink"
    os.symlink(mine, link)
    os.lchown(link, user_actor.uid, user_actor.gid)
    argv = root_actor._argv(["git", "-c", "agent.homeKeep=tok", "agent", "run", "--home",
                             str(link), "--", "sh", "-c",
                             "echo ready; read go; echo token > ~/tok; echo hi > a.txt"])
    proc = subprocess.Popen(argv, cwd=repo, env=root_actor.env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline() == "ready\n"
    os.unlink(link)  # their swap, while root's agent runs
    os.symlink(theirs, link)
    os.lchown(link, user_actor.uid, user_actor.gid)
    out, err = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0, err
    assert (mine / "tok").read_text() == "token\n"  # carried back where the run began
    assert list(theirs.iterdir()) == []  # nothing of root's reached their directory
