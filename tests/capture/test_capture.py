"""Capture end to end: real `git agent run` overlays (as root and unprivileged), git as oracle.

The main oracle: run the same shell script on a plain copy of the worktree, then let git
itself compute that copy's tree (`git add -A` into a temporary index + `git write-tree`);
the tree of agent/<session> must be that very tree object id.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Actor

SRC = Path(__file__).resolve().parents[2]
PY_ENV = {"PYTHONPATH": str(SRC)}

pytestmark = pytest.mark.sandbox


def agent_run(actor: Actor, repo: Path, name: str, script: str, *extra: str
              ) -> subprocess.CompletedProcess[str]:
    p = actor.run([sys.executable, "-m", "git_agent", "run", *extra, "-s", name, "--",
                   "sh", "-c", script], cwd=repo, env=PY_ENV, timeout=300)
    assert p.returncode == 0 or "exit" in p.stderr, p.stderr
    return p


def git(actor: Actor, repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return actor.git(*args, cwd=repo, env=env) if env else actor.git(*args, cwd=repo)


def oracle_tree(actor: Actor, repo: Path, script: str) -> str:
    """The tree git makes of the script's effect on a plain copy of the worktree."""
    copy = repo.parent / (repo.name + "-oracle")
    subprocess.run(["cp", "-a", str(repo), str(copy)], check=True)
    actor.run(["sh", "-c", script], cwd=copy, check=True)
    index = copy.parent / (copy.name + ".index")
    if (copy / ".git" / "index").exists():
        shutil.copy2(copy / ".git" / "index", index)
        actor.own(index)
    env = {"GIT_INDEX_FILE": str(index)}
    # the agent's commits inside the copy do not matter: compare the final files
    actor.git("add", "-A", cwd=copy, env=env)
    return actor.git("write-tree", cwd=copy, env=env).strip()


def ls_tree(actor: Actor, repo: Path, rev: str) -> list[str]:
    out = actor.run(["git", "ls-tree", "-r", "-z", rev], cwd=repo, check=True).stdout
    return sorted(x for x in out.split("\0") if x)


def assert_same_tree(actor: Actor, repo: Path, rev: str, script: str) -> None:
    want = oracle_tree(actor, repo, script)
    got = git(actor, repo, "rev-parse", f"{rev}^{{tree}}").strip()
    if got != want:
        copy = repo.parent / (repo.name + "-oracle")
        pytest.fail("trees differ:\nagent:\n" + "\n".join(ls_tree(actor, repo, rev))
                    + "\noracle:\n" + "\n".join(ls_tree(actor, copy, want)))


FILES = {
    "README.md": "hello\n",
    "src/app.py": "print('hi')\n",
    "src/lib/util.py": "x = 1\n",
    "src/lib/deep/z.txt": "z\n",
    "old/a.txt": "a\n",
    "old/sub/b.txt": "b\n",
    "tool.sh": "#!/bin/sh\n",
    "mkexec": "x\n",
    "f2d": "file\n",
    "d2f/x": "x\n",
    "gone.txt": "bye\n",
    "link-target": "t\n",
    ".gitignore": "*.log\nbuild/\n!keep.log\n",
    "sub/.gitignore": "!*.log\n/local\n",
    "tracked.log": "tracked though ignored\n",
    "node/.gitignore": "*\n!.gitignore\n",
}

SCRIPTS = {
    "edits": """
set -e
echo more >> README.md
rm gone.txt
rm -rf old && mkdir old && echo new > old/fresh.txt
rm -rf src/lib/deep
chmod -x tool.sh; chmod +x mkexec
rm f2d && mkdir f2d && echo in > f2d/inner
rm -rf d2f && echo now-a-file > d2f
ln -s link-target rel-link; ln -s /etc/passwd abs-link; ln -s nowhere dangling
mkdir -p empty/dir
""",
    "names": """
set -e
touch "$(printf 'new\\nline')" "$(printf 'caf\\351')" -- "-dash" "with space"
echo x > .wh.README.md
mkdir "$(printf 'd\\377ir')" && echo y > "$(printf 'd\\377ir/f')"
echo z > ./--help
""",
    "ignores": """
set -e
echo x > a.log; echo k > keep.log; echo s > sub/s.log; echo l > sub/local
mkdir -p build sub/local2; echo b > build/out; echo c > sub/local2/c
echo changed >> tracked.log
echo x > node/mod.js
printf 'newdir/\\n' >> .gitignore; mkdir newdir; echo n > newdir/n
rm sub/.gitignore
""",
}


@pytest.mark.parametrize("what", sorted(SCRIPTS))
def test_tree_matches_git(actor: Actor, what: str) -> None:
    repo = actor.make_repo(files=FILES)
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("*.secret\n")
    actor.own(repo)
    script = SCRIPTS[what] + "\necho s > x.secret\n"
    p = agent_run(actor, repo, "t", script)
    assert "agent/t" in p.stderr
    assert_same_tree(actor, repo, "agent/t", script)
    # the base is HEAD (clean), the branch one commit on it, with machine-readable trailers
    head = git(actor, repo, "rev-parse", "HEAD").strip()
    assert git(actor, repo, "rev-parse", "refs/agent-base/t").strip() == head
    assert git(actor, repo, "rev-parse", "agent/t~1").strip() == head
    msg = git(actor, repo, "log", "-1", "--format=%B", "agent/t")
    assert f"Agent-Base: {head}" in msg and "Agent-Session: t" in msg
    assert "Agent-Exit-Status: 0" in msg
    assert git(actor, repo, "status", "--porcelain") == ""  # the user's worktree untouched
    # capture again without changes: no new commit
    tip = git(actor, repo, "rev-parse", "agent/t").strip()
    p = agent_run(actor, repo, "t", "true")
    assert git(actor, repo, "rev-parse", "agent/t").strip() == tip, p.stderr
    actor.run(["git", "fsck", "--strict"], cwd=repo, check=True)


MANY = """
set -e
for d in 1 2 3 4 5 6; do mkdir -p many/d$d/sub; for f in 1 2 3 4 5 6 7 8 9 10 11 12; do
  echo "$d $f" > many/d$d/f$f; echo "$d $f sub" > many/d$d/sub/f$f; done; done
echo more >> README.md; touch src/app.py; chmod +x tool.sh; chmod -x tool.sh
"""


def test_many_files_one_pack(actor: Actor) -> None:
    """Past a few objects, a capture writes one pack; a recapture rewrites nothing known."""
    repo = actor.make_repo(files=FILES)
    packs = repo / ".git" / "objects" / "pack"
    before = set(os.listdir(packs))
    loose = git(actor, repo, "count-objects")
    agent_run(actor, repo, "t", MANY)
    assert_same_tree(actor, repo, "agent/t", MANY)
    new = set(os.listdir(packs)) - before
    assert len(new) == 2 and {n.rsplit(".", 1)[1] for n in new} == {"pack", "idx"}
    # nothing loose besides the pack, but the repository's id (refs/agent-id, one blob)
    assert int(git(actor, repo, "count-objects").split()[0]) == int(loose.split()[0]) + 1
    actor.run(["git", "fsck", "--strict"], cwd=repo, check=True)
    # a second run: the upper is captured again, with one more file
    tip = git(actor, repo, "rev-parse", "agent/t").strip()
    agent_run(actor, repo, "t", "echo last > many/last")
    assert git(actor, repo, "rev-parse", "agent/t~1").strip() == tip
    assert git(actor, repo, "show", "agent/t:many/last") == "last\n"
    shutil.rmtree(repo.parent / (repo.name + "-oracle"))
    assert_same_tree(actor, repo, "agent/t", MANY + "echo last > many/last\n")
    assert len(set(os.listdir(packs)) - before) == 2  # the few new objects stayed loose
    actor.run(["git", "fsck", "--strict"], cwd=repo, check=True)


def test_modes_symlinks_skips(actor: Actor) -> None:
    repo = actor.make_repo(files=FILES)
    p = agent_run(actor, repo, "t", SCRIPTS["edits"] + "mkfifo pipe\n")
    tree = {line.split("\t", 1)[1]: line.split()[0] for line in ls_tree(actor, repo, "agent/t")}
    assert tree["tool.sh"] == "100644" and tree["mkexec"] == "100755"
    assert tree["abs-link"] == "120000"
    assert git(actor, repo, "cat-file", "-p", "agent/t:abs-link") == "/etc/passwd"
    assert "pipe" not in tree and "fifo" in p.stderr
    names = git(actor, repo, "diff", "--name-status", "HEAD", "agent/t")
    assert "D\tgone.txt" in names and "D\tsrc/lib/deep/z.txt" in names
    assert "D\told/sub/b.txt" in names and "A\tf2d/inner" in names and "A\td2f" in names


def test_dirty_base(actor: Actor) -> None:
    repo = actor.make_repo(files={"a.txt": "a\n", "b.txt": "b\n"})
    (repo / "a.txt").write_text("user's uncommitted edit\n")
    (repo / "untracked.txt").write_text("user's new file\n")
    actor.own(repo)
    status_before = git(actor, repo, "status", "--porcelain")  # may refresh the index: first
    # then the index's stat data goes stale, as after an editor's save of the same bytes: a git
    # command of git agent that refreshes the index (status, add) would now write it
    os.utime(repo / "b.txt", (1_600_000_000, 1_600_000_000))
    index_before = (repo / ".git" / "index").read_bytes()
    agent_run(actor, repo, "t", "echo agent >> b.txt")
    names = git(actor, repo, "diff", "--name-status", "refs/agent-base/t", "agent/t")
    assert names == "M\tb.txt\n"
    base = "refs/agent-base/t"
    assert git(actor, repo, "show", f"{base}:a.txt") == "user's uncommitted edit\n"
    assert git(actor, repo, "show", f"{base}:untracked.txt") == "user's new file\n"
    assert git(actor, repo, "rev-parse", f"{base}~1").strip() == git(
        actor, repo, "rev-parse", "HEAD").strip()
    assert (repo / ".git" / "index").read_bytes() == index_before
    assert git(actor, repo, "status", "--porcelain") == status_before


def test_unborn(actor: Actor) -> None:
    repo = actor.make_repo(files={})
    (repo / "pre.txt").write_text("before\n")
    actor.own(repo)
    agent_run(actor, repo, "t", "echo new > new.txt")
    assert git(actor, repo, "rev-list", "--count", "refs/agent-base/t").strip() == "1"
    assert git(actor, repo, "diff", "--name-status", "refs/agent-base/t", "agent/t") == \
        "A\tnew.txt\n"
    assert git(actor, repo, "show", "agent/t:pre.txt") == "before\n"


@pytest.mark.parametrize("gc", [False, True], ids=["loose", "packed"])
def test_agent_commits_imported(actor: Actor, gc: bool) -> None:
    repo = actor.make_repo(files={"a.txt": "a\n"})
    script = ("set -e; echo 1 > one; git add one; git commit -qm 'agent: one'; "
              "echo 2 > two; git add two; git commit -qm 'agent: two'; "
              + ("git gc -q --prune=now; " if gc else "") + "echo left > uncommitted")
    agent_run(actor, repo, "t", script)
    log = git(actor, repo, "log", "--format=%s", "agent/t").splitlines()
    assert log[1:] == ["agent: two", "agent: one", "initial"]
    assert log[0].startswith("git agent: ")
    assert git(actor, repo, "show", "agent/t~1:two") == "2\n"
    assert_same_tree(actor, repo, "agent/t", script)
    actor.run(["git", "fsck", "--strict"], cwd=repo, check=True)
    # nothing uncommitted: the branch is the agent's own commit
    repo2 = actor.make_repo("repo2", files={"a.txt": "a\n"})
    agent_run(actor, repo2, "t", "set -e; echo 1 > one; git add one; git commit -qm mine")
    assert git(actor, repo2, "log", "-1", "--format=%s", "agent/t").strip() == "mine"


def test_agent_rewrote_history(actor: Actor) -> None:
    repo = actor.make_repo(files={"a.txt": "a\n"})
    actor.run(["sh", "-c", "echo b > b.txt && git add b.txt && git commit -qm second"],
              cwd=repo, check=True)
    script = "set -e; git reset -q --hard HEAD~1; echo c > c.txt; git add c.txt; git commit -qm x"
    p = agent_run(actor, repo, "t", script)
    assert "squashed" in p.stderr
    head = git(actor, repo, "rev-parse", "HEAD").strip()
    assert git(actor, repo, "rev-parse", "agent/t~1").strip() == head
    assert_same_tree(actor, repo, "agent/t", script)


def test_names_git_refuses_are_left_out(actor: Actor) -> None:
    """.git as other filesystems spell it, and a symlinked .gitmodules, never reach a branch
    (git would refuse to check it out, a server running fsck to receive it)."""
    repo = actor.make_repo(files={"a.txt": "a\n"})
    script = ("set -e; mkdir -p sub/.GIT git~1; echo x > sub/.GIT/config; echo y > git~1/HEAD; "
              "printf z > '.git. '; ln -s /etc/passwd .gitmodules; echo ok > fine.txt")
    p = agent_run(actor, repo, "t", script)
    assert git(actor, repo, "diff", "--name-only", "HEAD", "agent/t") == "fine.txt\n"
    for name in ("sub/.GIT", "git~1", ".git. ", ".gitmodules"):
        assert f"left out {name}:" in p.stderr  # quoted as git does: plain names bare
    actor.run(["git", "fsck", "--strict"], cwd=repo, check=True)


def test_agent_commits_with_names_git_refuses_are_squashed(actor: Actor) -> None:
    repo = actor.make_repo(files={"a.txt": "a\n"})
    # git add refuses git~1 (.git's NTFS short name); plumbing does not: a tree holding
    # git~1/config, committed as HEAD
    script = ("set -e; b=$(echo evil | git hash-object -w --stdin); "
              "t=$(printf '100644 blob %s\\tconfig\\n' $b | git mktree); "
              "top=$(printf '040000 tree %s\\tgit~1\\n' $t | git mktree); "
              "c=$(git commit-tree -p HEAD -m evil $top); git update-ref HEAD $c; "
              "echo ok > fine.txt")
    p = agent_run(actor, repo, "t", script)
    assert "unsafe entry git~1" in p.stderr and "squashed" in p.stderr
    assert git(actor, repo, "log", "--format=%s", "agent/t").splitlines()[1:] == ["initial"]
    tree = git(actor, repo, "ls-tree", "-r", "--name-only", "agent/t").split()
    assert "git~1/config" not in tree and "fine.txt" in tree
    actor.run(["git", "fsck", "--strict"], cwd=repo, check=True)


def test_big_binary(actor: Actor) -> None:
    repo = actor.make_repo()
    agent_run(actor, repo, "t", "head -c 31457280 /dev/urandom > big.bin")
    assert git(actor, repo, "cat-file", "-s", "agent/t:big.bin").strip() == "31457280"
    store = Path(actor.run([sys.executable, "-c", _STORE], cwd=repo, env=PY_ENV,
                           check=True).stdout.strip())
    want = git(actor, repo, "hash-object", str(store / "upper" / "big.bin")).strip()
    assert git(actor, repo, "rev-parse", "agent/t:big.bin").strip() == want


_STORE = ("from git_agent import repo, session; "
          "print(session.get(repo.find_worktree(), 't').dir)")

_CAPTURE = """
import sys
from git_agent import repo, session
from git_agent.capture import snapshot as base
from git_agent.capture import commit as capture
wt = repo.find_worktree()
s = session.get(wt, 't')
r = capture.capture(worktree=wt, session=s, base=base.snapshot(worktree=wt), command=['x'])
print(r.commit)
"""


def _digest(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            xattrs = tuple(sorted(os.listxattr(p, follow_symlinks=False)))
            data = Path(p).read_bytes() if os.path.isfile(p) and not os.path.islink(p) else b""
            out[p] = (st.st_mode, st.st_mtime_ns, st.st_size, xattrs, data)
    return out


def test_capture_while_running(actor: Actor) -> None:
    repo = actor.make_repo()
    # a real-home dir mounted writable is shared with the host: the script says it is ready
    # there, then waits for the gate, so the capture runs mid-run however slow it is
    door = actor.home / "door"
    door.mkdir()
    actor.own(door)
    ready, gate = door / "ready", door / "gate"
    script = ("echo one > one; rm README.md; : > ~/door/ready; "
              "while [ ! -e ~/door/gate ]; do sleep 0.05; done; echo two > two")
    run = subprocess.Popen(actor._argv([sys.executable, "-m", "git_agent", "run", "-s", "t",
                                        "--mount", "door:rw", "--", "sh", "-c", script]),
                           cwd=repo, env={**actor.env, **PY_ENV}, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        store = Path(actor.run([sys.executable, "-c", _STORE], cwd=repo, env=PY_ENV,
                               check=True).stdout.strip())
        deadline = time.monotonic() + 60
        while not ready.exists():
            if run.poll() is not None:
                pytest.fail(f"the run ended before its edits: {run.communicate()[1]!r}")
            if time.monotonic() > deadline:
                pytest.fail("the agent never got to its edits (60 s)")
            time.sleep(0.05)
        before = _digest(store / "upper")
        p = actor.run([sys.executable, "-c", _CAPTURE], cwd=repo, env=PY_ENV, check=True)
        assert _digest(store / "upper") == before
        first = p.stdout.strip()
        assert git(actor, repo, "diff", "--name-status", "HEAD", first) == \
            "D\tREADME.md\nA\tone\n"
        assert run.poll() is None  # the capture was taken while the agent ran
    finally:
        if gate.parent.is_dir():
            gate.write_text("")
            actor.own(gate)
        _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    names = git(actor, repo, "diff", "--name-status", "HEAD", "agent/t")
    assert names == "D\tREADME.md\nA\tone\nA\ttwo\n"


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process of group pgid is left."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat_ = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat_[stat_.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def test_killed_capture_leaves_old_or_complete_ref(actor: Actor) -> None:
    repo = actor.make_repo()
    script = ("set -e; for i in $(seq 1 400); do echo $i > f$i; done; "
              "yes abcdefgh | head -c 5000000 > big; mkdir -p a/b/c; echo x > a/b/c/d")
    agent_run(actor, repo, "t", script, "--no-capture")
    rng = random.Random(1234)
    results: set[str] = set()
    for _ in range(6):
        proc = subprocess.Popen(actor._argv([sys.executable, "-c", _CAPTURE]), cwd=repo,
                                env={**actor.env, **PY_ENV}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        # its git children outlive it a moment (holding a ref's lock, maybe): let them end
        deadline = time.monotonic() + 30
        while _group_alive(proc.pid):
            assert time.monotonic() < deadline, "the killed capture's children never ended"
            time.sleep(0.05)
        tip = actor.run(["git", "rev-parse", "-q", "--verify", "agent/t"], cwd=repo).stdout
        results.add(tip.strip())
        if tip.strip():
            assert_same_tree(actor, repo, "agent/t", script)
            shutil.rmtree(repo.parent / (repo.name + "-oracle"))
        actor.run(["git", "fsck", "--strict", "--no-dangling"], cwd=repo, check=True)
    final = actor.run([sys.executable, "-c", _CAPTURE], cwd=repo, env=PY_ENV, check=True)
    assert results <= {"", final.stdout.strip()}


def test_a_branch_git_cannot_create_is_said_as_such(actor: Actor) -> None:
    """A ref of yours under agent/S (agent/S/x) keeps git from creating agent/S: the capture
    says that, not that the branch moved; the agent's changes stay in the session."""
    repo = actor.make_repo()
    actor.git("update-ref", "refs/heads/agent/solo/x", "HEAD", cwd=repo)
    p = actor.agent("run", "-s", "solo", "--", "sh", "-c", "echo a > a", cwd=repo)
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.splitlines()[-1] == (
        "git agent: cannot capture: git cannot create refs/heads/agent/solo while "
        "refs/heads/agent/solo/x exists (a ref cannot also be a folder of refs); rename that "
        "ref, then run the capture again"), p.stderr
    actor.git("update-ref", "-d", "refs/heads/agent/solo/x", cwd=repo)
    assert actor.agent("capture", "solo", cwd=repo).returncode == 0
    assert actor.git("show", "agent/solo:a", cwd=repo) == "a\n"
