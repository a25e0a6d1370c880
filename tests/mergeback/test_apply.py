"""`git agent apply`: onto the worktree only, three-way, never through a symlink, all or nothing."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.mergeback.conftest import Work


def test_apply_all_writes_the_worktree_only_and_consumes(work: Work) -> None:
    work.run("echo more >> src/app.py; echo new > new.txt; rm src/util.py; chmod +x tool.sh")
    before = work.index_and_head()
    work.ok("apply", "--yes", "s")  # tool.sh becomes executable: a risk line
    assert work.index_and_head() == before
    assert work.git("status", "--porcelain").splitlines() == [
        " M src/app.py", " D src/util.py", " M tool.sh", "?? new.txt"]
    assert os.access(work.root / "tool.sh", os.X_OK)
    assert (work.root / "src/app.py").read_text().endswith("line 10\nmore\n")
    assert work.review_paths() == []  # consumed: review no longer shows them
    # the next run sees the worktree's version, not its own older copy
    work.sh("echo mine >> new.txt")
    work.run("cat new.txt > seen.txt")
    assert (work.root / "new.txt").read_text() == "new\nmine\n"
    assert work.review_paths() == ["seen.txt"]


def test_apply_only_the_given_paths(work: Work) -> None:
    work.run("echo x >> README.md; echo y >> docs/c.md; echo z >> src/app.py")
    work.ok("apply", "s", "--", "docs", "README.md")
    assert work.git("status", "--porcelain") == " M README.md\n M docs/c.md\n"
    assert work.review_paths() == ["src/app.py"]
    p = work.agent("apply", "s", "--", "docs/c.md")  # 13.7: said as it is, not an error
    assert p.returncode == 0 and "docs/c.md: already applied" in p.stderr
    p = work.agent("apply", "s", "--", "tool.sh")  # never changed by the agent
    assert p.returncode == 2 and "not among the changes" in p.stderr


def test_paths_after_dashes_are_paths_of_the_default_session(work: Work) -> None:
    """`git agent apply -- PATH` (as its help shows): PATH is a path, the session the default
    one (named after the branch), never a session named PATH."""
    import json

    work.ok("run", "--", "sh", "-c", "echo x >> README.md; echo y >> docs/c.md")
    p = work.ok("review", "--json", "--", "docs")
    assert [f["path"] for f in json.loads(p.stdout)["files"]] == ["docs/c.md"]
    work.ok("apply", "--", "docs")
    assert work.git("status", "--porcelain") == " M docs/c.md\n"
    work.ok("apply", "-i", "--", "README.md", input="y\n")
    assert work.git("status", "--porcelain") == " M README.md\n M docs/c.md\n"


def test_tracked_symlink_to_outside_is_replaced_not_written_through(work: Work) -> None:
    outside = work.actor.base / "outside.txt"
    outside.write_text("precious\n")
    work.actor.own(outside)
    os.symlink(outside, work.root / "link")
    work.git("add", "link")
    work.git("commit", "-qm", "link")
    work.run("rm link; echo agent > link")
    work.ok("apply", "s")
    assert outside.read_text() == "precious\n"
    assert not (work.root / "link").is_symlink()
    assert (work.root / "link").read_text() == "agent\n"


def test_symlinked_parent_dir_is_replaced_not_followed(work: Work) -> None:
    outside = work.actor.base / "outside"
    outside.mkdir()
    work.actor.own(outside)
    os.symlink(outside, work.root / "lib")
    work.git("add", "lib")
    work.git("commit", "-qm", "lib")
    work.run("rm lib; mkdir lib; echo x > lib/f")
    work.ok("apply", "s", "--", "lib/f")  # needs the link's deletion: applied with it
    assert os.listdir(outside) == []
    assert (work.root / "lib").is_dir() and not (work.root / "lib").is_symlink()
    assert (work.root / "lib/f").read_text() == "x\n"


def test_user_symlink_in_the_way_is_a_conflict(work: Work) -> None:
    outside = work.actor.base / "elsewhere"
    outside.mkdir()
    work.actor.own(outside)
    work.run("echo new > docs/guide/n.md")
    work.sh(f"rm -r docs/guide && ln -s {outside} docs/guide")
    p = work.agent("apply", "s")
    assert p.returncode == 1 and "docs/guide is not a directory" in p.stderr
    assert os.listdir(outside) == []


def test_deleted_directory_tree(work: Work) -> None:
    work.run("rm -rf docs")
    work.ok("apply", "s")
    assert not (work.root / "docs").exists()
    assert work.review_paths() == []


def test_mode_symlink_and_type_changes(work: Work) -> None:
    work.sh("ln -s README.md r && git add r && git commit -qm r")
    work.run("chmod +x tool.sh; ln -sfn src/app.py r; rm README.md; ln -s docs/c.md README.md")
    work.ok("apply", "-y", "s")
    assert os.access(work.root / "tool.sh", os.X_OK)
    assert os.readlink(work.root / "r") == "src/app.py"
    assert os.readlink(work.root / "README.md") == "docs/c.md"
    assert work.git("diff", "--stat").count("|") == 3


def test_dir_replaced_by_a_file_and_back(work: Work) -> None:
    work.run("rm -rf docs/guide; echo f > docs/guide; rm tool.sh; mkdir tool.sh; "
             "echo t > tool.sh/x")
    work.ok("apply", "s")
    assert (work.root / "docs/guide").read_text() == "f\n"
    assert (work.root / "tool.sh/x").read_text() == "t\n"


def test_non_overlapping_edits_merge(work: Work) -> None:
    work.run("sed -i 's/line 1$/agent 1/' src/app.py")
    work.sh("sed -i 's/line 10/user 10/' src/app.py")
    work.ok("apply", "s")
    text = (work.root / "src/app.py").read_text()
    assert text.startswith("agent 1\n") and text.endswith("user 10\n")


def test_overlapping_edits_are_refused_with_nothing_written(work: Work) -> None:
    work.run("sed -i 's/line 5/agent 5/' src/app.py; echo other >> README.md")
    work.sh("sed -i 's/line 5/user 5/' src/app.py")
    before = work.snapshot()
    p = work.agent("apply", "s")
    assert p.returncode == 1
    assert "src/app.py: changed by both, overlapping" in p.stderr
    assert "nothing was applied" in p.stderr
    assert work.snapshot() == before
    assert work.review_paths() == ["README.md", "src/app.py"]


def test_merge_writes_conflict_markers(work: Work) -> None:
    work.run("sed -i 's/line 5/agent 5/' src/app.py; echo other >> README.md")
    work.sh("sed -i 's/line 5/user 5/' src/app.py")
    p = work.agent("apply", "--merge", "s")
    assert p.returncode == 1 and "conflict markers written in src/app.py" in p.stderr
    text = (work.root / "src/app.py").read_text()
    assert ("<<<<<<< worktree\nuser 5\n||||||| base\nline 5\n=======\nagent 5\n"
            ">>>>>>> agent/s\n") in text  # the base section, as merge.conflictStyle=diff3
    assert (work.root / "README.md").read_text() == "hello\nother\n"


def test_delete_modify_and_add_add_conflicts(work: Work) -> None:
    work.run("rm docs/c.md; echo agent > both.txt")
    work.sh("echo user >> docs/c.md; echo user > both.txt")
    before = work.snapshot()
    p = work.agent("apply", "s")
    assert p.returncode == 1
    assert "docs/c.md: deleted by the agent, changed in your worktree" in p.stderr
    assert "both.txt: added by both, differently" in p.stderr
    assert work.snapshot() == before


def test_already_applied_is_fine(work: Work) -> None:
    work.run("echo same > same.txt")
    work.sh("echo same > same.txt")
    work.ok("apply", "s")
    assert work.review_paths() == []


def test_refused_during_a_merge_or_rebase(work: Work) -> None:
    work.run("echo x >> README.md")
    git_dir = work.root / ".git"
    for marker in ("MERGE_HEAD", "rebase-merge", "CHERRY_PICK_HEAD"):
        path = git_dir / marker
        path.mkdir() if marker == "rebase-merge" else path.write_text("0" * 40 + "\n")
        before = work.snapshot()
        p = work.agent("apply", "s")
        assert p.returncode == 1 and "in progress" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and work.snapshot() == before
        path.rmdir() if path.is_dir() else path.unlink()


def test_missing_upper_is_one_clear_line(work: Work) -> None:
    work.run("echo x >> README.md")
    import shutil

    store = work.actor.home / ".local/state/git-agent"
    upper = next(store.glob("*/sessions/s/upper"))
    shutil.rmtree(upper)
    before = work.snapshot()
    p = work.agent("apply", "s")
    assert p.returncode == 1 and "damaged" in p.stderr and len(p.stderr.splitlines()) == 1
    assert work.snapshot() == before


def test_partially_consumed_deleted_dir_keeps_the_rest(work: Work) -> None:
    work.run("rm -rf docs/guide")  # one whiteout covers a.md and deep/b.md
    work.ok("apply", "s", "--", "docs/guide/a.md")
    assert not (work.root / "docs/guide/a.md").exists()
    assert (work.root / "docs/guide/deep/b.md").exists()
    assert work.review_paths() == ["docs/guide/a.md", "docs/guide/deep/b.md"]
    work.ok("apply", "s", "--", "docs/guide/deep")
    assert work.review_paths() == []
    assert not (work.root / "docs/guide").exists()


def test_opaque_dir_is_released_only_when_all_of_it_is_consumed(work: Work) -> None:
    work.run("rm -rf docs/guide; mkdir docs/guide; echo new > docs/guide/a.md")  # opaque dir
    work.ok("apply", "s", "--", "docs/guide/a.md")
    assert (work.root / "docs/guide/a.md").read_text() == "new\n"
    assert (work.root / "docs/guide/deep/b.md").exists()  # not resurrected, not hidden
    assert work.review_paths() == ["docs/guide/a.md", "docs/guide/deep/b.md"]
    work.run("cat docs/guide/a.md > seen; ls docs/guide >> seen")
    assert work.git("show", "agent/s:seen") == "new\na.md\n"  # the agent's view is intact
    work.ok("apply", "s")
    assert work.review_paths() == []
    assert sorted(os.listdir(work.root / "docs/guide")) == ["a.md"]


def test_running_session_is_captured_and_left_alone(work: Work) -> None:
    work.run("echo first > first.txt", session="live")  # the base is recorded by a first run
    # a real-home dir mounted writable is shared with the host: the agent says it wrote, then
    # waits for the gate
    with work.running("live") as bg:
        assert '"running": true' in work.ok("list", "--json").stdout
        p = work.ok("apply", "live")
        assert "running" in p.stderr and (work.root / "live.txt").read_text() == "live\n"
        p = work.agent("drop", "--force", "live")
        assert p.returncode == 1 and "running" in p.stderr
        assert bg.poll() is None  # all of it while the agent ran
    # left in the session while it ran (the run's own capture brings it back)
    assert work.review_paths("live") == ["first.txt", "live.txt"]


def test_nothing_outside_and_no_dot_git(work: Work) -> None:
    from git_agent.mergeback import worktree_files

    for bad in (b".git/config", b"sub/.GIT/hooks/x", b"git~1/config", b"a/.git./x", b"a/../b",
                b"/abs", b"x//y"):
        try:
            worktree_files.components(bad)
        except Exception as e:  # noqa: BLE001
            assert "refusing" in str(e)
        else:
            raise AssertionError(bad)
    assert Path(work.root).is_dir()


def test_interrupted_apply_writes_all_or_nothing(work: Work) -> None:
    """^C during apply: the worktree gets all of the change and the session gives it up, or
    neither happens. SIGINT lands at several moments of a 2,000-file apply (on this machine,
    two of them while files are written: without the guard, those left 50-150 files), on its
    process group, so also on the git processes it runs then (recapture)."""
    import contextlib
    import json
    import signal

    n = 2000
    before = work.snapshot()
    for delay in (0.0, 0.15, 0.3, 0.45, 0.6, 0.8):
        work.run(f"mkdir -p many && for i in $(seq {n}); do echo $i > many/f$i; done")
        p = subprocess.Popen(work.actor._argv(["git-agent", "apply", "s"]), cwd=work.root,
                             env=work.actor.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGINT)  # to its whole process group, as a terminal does
        _, err = p.communicate(timeout=120)
        python_died = err.startswith(b"Fatal Python error: init_") or (
            b"Traceback" in err and b"/git_agent/" not in err)
        if python_died:
            # the ^C came while the interpreter itself started (init_sys_streams,
            # init_import_site), or in the console script's own imports (older pips write
            # `import re` in it): Python's message, before any code of git agent ran (from its
            # first line, a ^C kills it plainly); nothing may be written
            assert p.returncode != 0 and not (work.root / "many").exists()
        else:
            assert b"Traceback" not in err, err
        written = len(os.listdir(work.root / "many")) if (work.root / "many").exists() else 0
        held = [f["path"] for f in json.loads(work.ok("review", "s", "--json").stdout)["files"]
                if f["path"].startswith("many/")] if p.returncode != 0 else []
        if written == 0:
            # 130 from git agent; -SIGINT when it came before Python's handler was set; 1
            # from the interpreter itself when it came while Python started (its message)
            assert p.returncode in (130, -signal.SIGINT) or (
                python_died and p.returncode == 1), (delay, p.returncode, err)
            assert len(held) == n
        else:
            assert written == n, f"partial apply: {written} of {n} files (SIGINT at {delay} s)"
            assert held == []
            if p.returncode != 0:  # the ^C came while it wrote: said, then acted on
                assert b"interrupted, after apply finished" in err
                # and said at once, before the end: that it finishes the write first
                assert err.index(b"interrupted: finishing the write first") < err.index(
                    b"interrupted, after apply finished")
                assert p.returncode == -signal.SIGINT
        work.sh("rm -rf many")
        work.ok("drop", "-f", "s")
        assert work.snapshot() == before


def test_a_failed_write_puts_back_what_apply_wrote_before_it(work: Work) -> None:
    """A write that fails halfway (a directory the user may not write; as root, an immutable
    one) leaves the worktree exactly as it was: the files written and deleted before it, the
    directories made or emptied, every permission bit. The session keeps everything, and once
    the cause is gone the same apply works."""
    work.sh("mkdir zz && echo z > zz/f.txt && git add zz && git commit -qm zz && "
            "chmod 0640 README.md && chmod 0750 docs/guide/deep && chmod 0700 tool.sh")
    work.run("echo x >> README.md; rm docs/guide/deep/b.md; rm tool.sh; mkdir tool.sh; "
             "echo t > tool.sh/x; mkdir -p new/deep && echo n > new/deep/n.txt; "
             "ln -s README.md link; echo agent > zz/f.txt")
    paths = work.review_paths()
    branch = work.git("rev-parse", "agent/s")
    before, index_head = work.snapshot(), work.index_and_head()
    # what apply writes over or deletes is kept aside and renamed back: the very same inodes
    inodes = {f: os.lstat(work.root / f).st_ino for f in ("README.md", "docs/guide/deep/b.md")}
    lock = ["chattr", "+i", "zz"] if work.actor.is_root else ["chmod", "0555", "zz"]
    unlock = ["chattr", "-i", "zz"] if work.actor.is_root else ["chmod", "0755", "zz"]
    if subprocess.run(lock, cwd=work.root, capture_output=True).returncode != 0:
        pytest.skip("chattr +i does not work on this filesystem")
    try:
        p = work.agent("apply", "s")
    finally:
        subprocess.run(unlock, cwd=work.root, check=True)
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("git agent: apply failed writing zz/f.txt: ")
    assert "nothing was applied" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    assert work.snapshot() == before  # bytes, links and modes of every file; no temp file
    assert os.stat(work.root / "docs/guide/deep").st_mode & 0o7777 == 0o750  # rmdir undone
    assert {f: os.lstat(work.root / f).st_ino for f in inodes} == inodes
    assert not list((work.root / ".git").glob("agent-apply-*"))  # nothing left aside
    assert work.index_and_head() == index_head
    assert work.review_paths() == paths and work.git("rev-parse", "agent/s") == branch
    work.ok("apply", "s")
    assert (work.root / "zz/f.txt").read_text() == "agent\n"
    assert (work.root / "tool.sh/x").read_text() == "t\n"
    assert not (work.root / "docs/guide/deep").exists()
    assert os.readlink(work.root / "link") == "README.md"
    assert work.review_paths() == []
    assert not list((work.root / ".git").glob("agent-apply-*"))


def test_bits_of_your_dirs_stay_and_setuid_is_never_handed_on(work: Work) -> None:
    """A private dir emptied by the agent's deletions but given a new file keeps its bits;
    a setuid (setgid, sticky) file the agent rewrites loses those bits: they were given to
    other bytes than the agent's."""
    work.sh("mkdir secret && echo a > secret/a && chmod 0700 secret && git add secret && "
            "git commit -qm s && chmod 6755 tool.sh")
    work.run("rm secret/a; echo b > secret/b; echo 'echo changed' > tool.sh")
    work.ok("apply", "s")
    assert (work.root / "secret/b").read_text() == "b\n"
    assert os.stat(work.root / "secret").st_mode & 0o7777 == 0o700
    assert os.stat(work.root / "tool.sh").st_mode & 0o7777 == 0o755


def test_written_but_the_session_not_updated_says_so(work: Work) -> None:
    """After the worktree is written, taking the paths out of the session can still fail
    (its store not writable, a full disk): the message says the worktree has all of it, and
    the next apply finishes the job."""
    work.run("echo agent >> README.md")
    (upper,) = (work.actor.home / ".local/state/git-agent").glob("*/sessions/s/upper")
    lock = ["chattr", "+i", str(upper)] if work.actor.is_root else ["chmod", "0555", str(upper)]
    unlock = ["chattr", "-i", str(upper)] if work.actor.is_root else ["chmod", "0755", str(upper)]
    if work.actor.run(lock).returncode != 0:
        pytest.skip("chattr +i does not work on this filesystem")
    try:
        p = work.agent("apply", "s")
    finally:
        work.actor.run(unlock, check=True)
    assert p.returncode == 1 and "your worktree has all of the change" in p.stderr, p.stderr
    assert (work.root / "README.md").read_text() == "hello\nagent\n"
    work.ok("apply", "s")
    assert work.review_paths() == [] and (work.root / "README.md").read_text() == "hello\nagent\n"


def test_what_a_killed_apply_left_aside_is_pointed_at(work: Work) -> None:
    """kill -9 while apply writes leaves what it replaced in .git/agent-apply-PID-*: the next
    apply says where (an apply still running has its own, and is not reported)."""
    left = work.root / ".git" / "agent-apply-999999999-0a1b2c3d"
    running = work.root / ".git" / f"agent-apply-{os.getpid()}-0a1b2c3d"
    for d in (left, running):
        d.mkdir()
        (d / "0").write_text("the user's old README\n")
    work.actor.own(work.root)
    work.run("echo agent >> docs/c.md")
    p = work.ok("apply", "s")
    assert f"files it replaced or deleted are in {left}" in p.stderr
    assert str(running) not in p.stderr
    assert (left / "0").read_text() == "the user's old README\n"  # never removed by apply


def test_a_dir_of_yours_is_never_moved_away_for_the_agent_s_file(work: Work) -> None:
    """The agent replaced docs/guide (a dir) by a file. Your docs/guide still holds what the
    agent's deletions do not cover (an empty dir; files in a dir apply may not list): a
    conflict, and nothing of it moves (it once went into .git/agent-apply-*)."""
    work.run("rm -rf docs/guide; echo f > docs/guide")
    for mine in ("mkdir docs/guide/cache", "mkdir docs/guide/priv && echo m > docs/guide/priv/m "
                 "&& chmod 0300 docs/guide/priv"):
        work.sh(mine)
        before = work.snapshot()
        try:
            p = work.agent("apply", "s")
        finally:
            work.sh("[ ! -d docs/guide/priv ] || chmod 0700 docs/guide/priv")
        assert p.returncode == 1 and "docs/guide:" in p.stderr, p.stderr
        assert "internal error" not in p.stderr
        if "priv" not in mine:  # (the snapshot of an unreadable dir differs by its mode)
            assert work.snapshot() == before
        assert (work.root / "docs/guide/a.md").read_text() == "a\n"
        assert not list((work.root / ".git").glob("agent-apply-*"))
        work.sh("rm -rf docs/guide/cache docs/guide/priv")
    work.ok("apply", "s")
    assert (work.root / "docs/guide").read_text() == "f\n"


@pytest.mark.parametrize(("agent", "locked", "path"), [
    ("echo agent > README.md", "README.md", "README.md"),  # a file you cannot read
    ("rm docs/c.md", "docs", "docs/c.md"),  # a dir you cannot enter: the deletion is not done
], ids=["file", "dir"])
def test_what_you_cannot_read_is_a_conflict(work: Work, agent: str, locked: str,
                                             path: str) -> None:
    if work.actor.is_root:
        pytest.skip("root reads and enters what has mode 0000")
    work.run(agent)
    mode = os.stat(work.root / locked).st_mode & 0o777
    work.sh(f"chmod 0000 {locked}")
    try:
        p = work.agent("apply", "s")
    finally:
        work.sh(f"chmod {mode:o} {locked}")
    assert p.returncode == 1 and "internal error" not in p.stderr
    assert f"{path}: your worktree's file or directory there cannot be read" in p.stderr
    assert work.git("status", "--porcelain") == "" and work.review_paths() == [path]


def test_your_rm_leaving_empty_dirs_does_not_stop_a_dir_becoming_a_file(work: Work) -> None:
    """The agent replaced docs/guide (a dir) by a file; you removed its files yourself with
    rm, which leaves the (empty) dirs: they were the base's, the replacement applies."""
    work.run("rm -rf docs/guide; echo f > docs/guide")
    work.sh("rm docs/guide/a.md docs/guide/deep/b.md")  # docs/guide and docs/guide/deep stay
    work.ok("apply", "s")
    assert (work.root / "docs/guide").read_text() == "f\n"


def test_a_repository_inside_the_dir_is_a_conflict_not_an_error(work: Work) -> None:
    work.run("rm -rf docs/guide; echo f > docs/guide")
    work.sh("mkdir -p docs/guide/vendor && git init -q docs/guide/vendor")
    p = work.agent("apply", "s")
    assert p.returncode == 1 and "docs/guide: a directory in your worktree" in p.stderr, p.stderr
    assert (work.root / "docs/guide/vendor/.git").is_dir()
