"""What list, review, capture and drop say of a session's state, and sessions known only by
their refs (no store folder): through the real CLI, git as the oracle."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.mergeback.conftest import Work
from tests.mergeback.test_risky_apply import on_tty


def store_folder(work: Work, name: str = "s") -> Path:
    found = list((work.actor.home / ".local/state/git-agent").glob(f"*/sessions/{name}"))
    assert len(found) == 1, found
    return found[0]


def row(work: Work, name: str = "s") -> dict[str, object]:
    rows = json.loads(work.ok("list", "--json").stdout)
    return next(r for r in rows if r["name"] == name)


def test_list_and_review_say_when_the_upper_is_ahead_of_the_branch(work: Work) -> None:
    work.run("echo a > a.txt")
    assert row(work)["uncaptured"] is False
    assert "git agent capture" not in work.ok("list").stderr
    work.ok("run", "-s", "s", "--no-capture", "--", "sh", "-c", "echo b >> README.md")
    assert row(work)["uncaptured"] is True
    p = work.ok("list")
    assert "idle, not captured" in p.stdout and "`git agent capture s`" in p.stderr
    p = work.ok("review", "s")
    assert "holds changes agent/s does not have" in p.stderr
    assert "`git agent capture s`" in p.stderr
    assert json.loads(work.ok("review", "s", "--json").stdout)["uncaptured"] is True
    assert work.review_paths() == ["a.txt"]  # review shows the branch, and said so
    work.ok("capture", "s")
    assert row(work)["uncaptured"] is False
    assert "git agent capture" not in work.ok("review", "s").stderr
    assert work.review_paths() == ["README.md", "a.txt"]


def test_a_running_session_is_listed_as_running(work: Work) -> None:
    work.run("echo first > first.txt")
    with work.running("s"):
        p = work.ok("list")
        line = next(x for x in p.stdout.splitlines() if x.startswith("s "))
        assert " running " in line and "running now; before:" in line and "never" not in line
        assert "is running: FILES counts what was captured last" in p.stderr


def test_capture_says_what_unchanged_means(work: Work) -> None:
    work.run("echo more >> README.md")
    p = work.ok("capture", "s")
    assert "unchanged" not in p.stderr
    assert "agent/s already up to date (nothing new since its last capture); it holds " \
           "0 added, 1 modified, 0 deleted" in p.stderr


def test_the_drop_prompt_names_no_branch_that_does_not_exist(work: Work) -> None:
    work.ok("run", "-s", "s", "--no-capture", "--", "sh", "-c", "echo b >> README.md")
    assert work.git("for-each-ref", "refs/heads/agent/") == ""
    code, err = on_tty(work, ["drop", "s"], b"n\n")
    assert code == 1 and "no branch yet" in err and "agent/s" not in err


def test_review_of_an_empty_session_says_so(work: Work) -> None:
    work.run("true")
    p = work.ok("review", "s")
    assert p.stdout == "" and "session 's' has no changes" in p.stderr


def test_a_session_known_only_by_its_refs(work: Work) -> None:
    """Its store folder gone: review, apply (plain and --commit) and drop from the refs."""
    work.run("echo one > one.txt && echo two >> README.md")
    shutil.rmtree(store_folder(work))
    assert row(work)["refs_only"] is True
    assert "refs only" in work.ok("list").stdout
    assert work.review_paths() == ["README.md", "one.txt"]
    work.ok("apply", "s", "--", "one.txt")
    assert work.git("status", "--porcelain") == "?? one.txt\n"
    assert work.git("diff", "--name-only", "refs/agent-base/s", "agent/s") == "README.md\n"
    work.sh("rm one.txt")
    head = work.git("rev-parse", "HEAD").strip()
    work.ok("apply", "--commit", "s")
    assert work.git("diff", "--name-only", head, "HEAD") == "README.md\n"
    assert work.git("status", "--porcelain") == ""
    assert work.review_paths() == []
    work.ok("drop", "-f", "s")
    assert work.git("for-each-ref", "refs/heads/agent/", "refs/agent-base/",
                    "refs/agent-history/") == ""


def test_a_branch_fetched_without_its_base_ref(work: Work) -> None:
    """Only agent/s came (fetched, or its base ref lost): the base is the one its capture's
    Agent-Base trailer names; with neither, one line says what is missing."""
    work.run("echo two >> README.md")
    shutil.rmtree(store_folder(work))
    work.git("update-ref", "-d", "refs/agent-base/s")
    assert work.review_paths() == ["README.md"]
    work.ok("apply", "s")
    assert work.git("status", "--porcelain") == " M README.md\n"
    assert work.git("rev-parse", "agent/s") == work.git("rev-parse", "refs/agent-base/s")
    # a branch whose commits name no base here
    work.sh("git checkout -q README.md")
    work.git("update-ref", "-d", "refs/agent-base/s")
    work.git("update-ref", "refs/heads/agent/s", "HEAD")
    p = work.agent("review", "s")
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1
    assert "known only by its branch agent/s" in p.stderr and "refs/agent-base/s" in p.stderr
    p = work.agent("apply", "s")
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1


def test_capture_of_a_session_known_only_by_its_refs_is_one_line(work: Work) -> None:
    work.run("echo one > one.txt")
    shutil.rmtree(store_folder(work))
    p = work.agent("capture", "s")
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1
    assert "known only by its refs" in p.stderr


def test_refs_only_apply_never_overwrites_work_that_reached_the_branch_meanwhile(
        work: Work) -> None:
    """A session known by its refs has no lock: agent/S moves (a fetch) while apply -i asks.
    The rewrite swaps from the tip apply read, so the newer work is never lost (attack 3, #9)."""
    work.run("echo a > a.txt && echo b > b.txt")
    shutil.rmtree(store_folder(work))
    newer = work.git("commit-tree", "-p", "agent/s", "-m", "newer work, fetched meanwhile",
                     work.git("rev-parse", "HEAD^{tree}").strip()).strip()
    err = work.root.parent / "apply-i.err"
    with open(err, "wb") as out:
        p = subprocess.Popen(work.actor._argv(["git", "agent", "apply", "-i", "--yes", "s"]),
                             cwd=work.root, env=work.actor.env, stdin=subprocess.PIPE,
                             stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while b"apply a.txt" not in err.read_bytes():
            assert p.poll() is None and time.monotonic() < deadline, err.read_bytes()
            time.sleep(0.05)
        work.git("update-ref", "refs/heads/agent/s", newer)
        p.communicate(b"y\nn\n", timeout=60)
    said = err.read_text()
    assert "Traceback" not in said and p.returncode != 0, said
    assert work.git("rev-parse", "agent/s").strip() == newer  # left as it is, and said so
    assert "agent/s moved while apply ran" in said, said


def test_a_live_session_of_another_worktree_is_never_refs_only(work: Work) -> None:
    """Refs are shared by linked worktrees, store folders are not: a session of worktree A
    seen from B is refused in one line naming A, never dropped or applied there (#10)."""
    work.run("echo work > agentwork.txt", session="foo")
    other = work.root.parent / "B"
    work.git("worktree", "add", "-q", str(other), "-b", "other")
    in_b = Work(work.actor, other)
    for verb in (["drop", "--force", "foo"], ["apply", "--yes", "foo"], ["review", "foo"]):
        p = in_b.agent(*verb)
        assert p.returncode != 0 and len(p.stderr.splitlines()) == 1, (verb, p.stderr)
        assert f"of the worktree {work.root}" in p.stderr, p.stderr
    assert work.review_paths("foo") == ["agentwork.txt"]
    work.ok("apply", "foo")
    assert (work.root / "agentwork.txt").read_text() == "work\n"


def test_run_never_takes_over_another_worktrees_session(work: Work) -> None:
    """A session's refs belong to the worktree whose store holds it: `run` (and --attempts)
    in another worktree refuses its name in one line naming that worktree and -s, and
    agent/S and refs/agent-base/S stay as they were (attack 4, repro 08)."""
    work.run("echo mine > work-of-A", session="foo")
    work.run("echo mine > attempt-of-A", session="bar.1")
    refs = {r: work.git("rev-parse", r).strip()
            for r in ("agent/foo", "refs/agent-base/foo", "agent/bar.1")}
    other = work.root.parent / "B"
    work.git("worktree", "add", "-q", "--detach", str(other))
    in_b = Work(work.actor, other)
    for argv in (["run", "-s", "foo"], ["run", "--attempts", "2", "-s", "bar"]):
        p = in_b.agent(*argv, "--", "sh", "-c", "echo other > planted-by-B")
        assert p.returncode != 0 and len(p.stderr.splitlines()) == 1, (argv, p.stderr)
        assert str(work.root) in p.stderr and "-s NAME" in p.stderr, p.stderr
    assert {r: work.git("rev-parse", r).strip() for r in refs} == refs
    assert work.review_paths("foo") == ["work-of-A"]


def test_run_never_takes_over_another_worktrees_session_while_that_worktree_is_absent(
        work: Work) -> None:
    """A linked worktree moved away for a while (a drive unplugged; git still lists it, it is
    not pruned) still owns its session: its store is found by its listed path, not by opening
    it (attack 5, repro 03)."""
    other = work.root.parent / "B"
    work.git("worktree", "add", "-q", "--detach", str(other))
    in_b = Work(work.actor, other)
    in_b.run("echo mine > work-of-B", session="x")
    refs = {r: work.git("rev-parse", r).strip() for r in ("agent/x", "refs/agent-base/x")}
    away = work.root.parent / "B.unplugged"
    other.rename(away)
    try:
        p = work.agent("run", "-s", "x", "--", "sh", "-c", "echo other > planted-by-A")
        assert p.returncode != 0 and len(p.stderr.splitlines()) == 1, p.stderr
        assert str(other) in p.stderr and "-s NAME" in p.stderr, p.stderr
    finally:
        away.rename(other)
    assert {r: work.git("rev-parse", r).strip() for r in refs} == refs
    assert in_b.review_paths("x") == ["work-of-B"]


def test_run_never_takes_over_another_worktrees_session_whatever_folder_is_here(
        work: Work) -> None:
    """A folder of the same name in this worktree's store (what a lost race of two
    `run -s NAME` at once leaves) does not make the session ours: the owner check is made on
    every run, under the repository's lock (attack 5, repro 06)."""
    other = work.root.parent / "B"
    work.git("worktree", "add", "-q", "--detach", str(other))
    in_b = Work(work.actor, other)
    in_b.run("echo mine > work-of-B", session="x")
    refs = {r: work.git("rev-parse", r).strip() for r in ("agent/x", "refs/agent-base/x")}
    work.run("echo y > y", session="mine")  # this worktree's store exists now
    state = work.actor.home / ".local" / "state" / "git-agent"
    store = next(d for d in state.iterdir() if (d / "worktree").is_file()
                 and (d / "worktree").read_text().strip() == str(work.root))
    work.actor.run(["mkdir", str(store / "sessions" / "x")], check=True)
    p = work.agent("run", "-s", "x", "--", "sh", "-c", "echo other > planted-by-A")
    assert p.returncode != 0 and str(other) in p.stderr and "-s NAME" in p.stderr, p.stderr
    assert {r: work.git("rev-parse", r).strip() for r in refs} == refs
    assert in_b.review_paths("x") == ["work-of-B"]


def _waiting_on(lock: Path) -> bool:
    """A process is blocked in flock on `lock` (the kernel's /proc/locks: `->` marks one)."""
    ino = f":{lock.stat().st_ino} "
    return any("->" in line and ino in line for line in Path("/proc/locks").read_text()
               .splitlines())


def test_run_never_takes_over_another_worktrees_session_decided_under_the_repositorys_lock(
        work: Work) -> None:
    """Two `run -s NAME` at once in two worktrees: the owner check and the session folder are
    one step under a lock every worktree of the repository takes. A run waiting for that lock
    while the other worktree's session NAME is made refuses NAME once it gets it (attack 5,
    repro 06: checked, then the folder made, nothing held between, both could own it)."""
    other = work.root.parent / "B"
    work.git("worktree", "add", "-q", "--detach", str(other))
    in_b = Work(work.actor, other)
    in_b.run("echo y > y", session="b-own")
    b_store = store_folder(in_b, "b-own").parent.parent
    locks = list((work.actor.home / ".local/state/git-agent").glob(".repo-*.lock"))
    assert len(locks) == 1, locks
    fd = os.open(locks[0], os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # B deciding that NAME is its own
        argv = work.actor._argv(["git", "agent", "run", "-s", "x", "--", "sh", "-c",
                                 "echo other > planted-by-A"])
        bg = subprocess.Popen(argv, cwd=work.root, env=work.actor.env, text=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while not _waiting_on(locks[0]):
            assert time.time() < deadline and bg.poll() is None, "A's run did not wait"
            time.sleep(0.05)
        work.actor.run(["mkdir", "-p", str(b_store / "sessions" / "x" / "upper")], check=True)
    finally:
        os.close(fd)
    _, err = bg.communicate(timeout=60)
    assert bg.returncode != 0 and str(other) in err and "-s NAME" in err, err
    assert work.git("for-each-ref", "refs/heads/agent/x", "refs/agent-base/x") == ""


def test_detached_worktrees_get_a_session_each_by_default(work: Work) -> None:
    """Two linked worktrees on a detached HEAD: the default session name holds git's name for
    the worktree (detached-ID), so each run is its own session, reviewed where it ran."""
    shown = {}
    for name in ("C", "D"):
        wt = work.root.parent / name
        work.git("worktree", "add", "-q", "--detach", str(wt))
        w = Work(work.actor, wt)
        p = w.ok("run", "--", "sh", "-c", f'echo "$GIT_AGENT_SESSION"; echo x > by-{name}')
        shown[name] = p.stdout.strip().splitlines()[0]
        assert shown[name] == f"detached-{name}", p.stdout
    for name in ("C", "D"):
        w = Work(work.actor, work.root.parent / name)
        assert w.review_paths(shown[name]) == [f"by-{name}"]
        assert f"by-{name}" in w.ok("review").stdout


def test_drop_of_a_refs_only_session_with_no_store_yet(work: Work) -> None:
    """A branch fetched into a repository that never ran a session: drop works from the refs
    alone, no traceback (#14)."""
    base = work.git("rev-parse", "HEAD").strip()
    c = work.git("commit-tree", "-p", base, "-m", f"x\n\nAgent-Base: {base}",
                 work.git("rev-parse", "HEAD^{tree}").strip()).strip()
    work.git("update-ref", "refs/heads/agent/s1", c)
    p = work.ok("drop", "--force", "s1")
    assert "internal error" not in p.stderr
    assert work.git("for-each-ref", "refs/heads/agent/", "refs/agent-base/") == ""


def test_list_quotes_session_and_branch_names_as_paths(work: Work) -> None:
    """Names of fetched branches are any bytes git allows: list quotes them as git quotes
    paths (core.quotePath), so a C1 CSI or a right-to-left override never reaches your
    terminal raw (attack 3, #17)."""
    base = work.git("rev-parse", "HEAD").strip()
    c = work.git("commit-tree", "-p", base, "-m", f"x\n\nAgent-Base: {base}",
                 work.git("rev-parse", "HEAD^{tree}").strip()).strip()
    work.git("update-ref", "refs/heads/agent/c1\u009b2J", c)
    work.git("update-ref", "refs/heads/agent/fix\u202etxt.exe", c)
    out = work.ok("list")
    for raw in ("\u009b", "\u202e"):
        assert raw not in out.stdout + out.stderr
    assert '"c1\\302\\2332J"' in out.stdout and '"agent/c1\\302\\2332J"' in out.stdout
    assert '"fix\\342\\200\\256txt.exe"' in out.stdout, out.stdout
    rows = {r["name"] for r in json.loads(work.ok("list", "--json").stdout)}
    assert {"c1\u009b2J", "fix\u202etxt.exe"} <= rows  # --json keeps the exact names
