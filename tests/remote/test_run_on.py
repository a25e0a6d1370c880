"""`git agent run --on` through a real sshd on loopback (tests/remote/conftest.py), as root and as
an unprivileged user: the base goes out as a bundle (untracked work included), the agent runs in
the remote's bwrap sandbox, agent/S comes back checked, and review / apply work on it here."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import Actor
from tests.helpers import cmdlines, procs
from tests.remote.conftest import Sshd
from tests.remote.test_over_ssh import remote_git_agent, setup


def run_on(actor: Actor, repo: Path, *cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    p = actor.agent("run", "--on", "box", "-s", "s", "--", *cmd, cwd=repo, **kw)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_run_on_round_trip_with_an_untracked_file(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    (repo / "untracked.txt").write_text("mine\n")
    actor.own(repo)
    p = run_on(actor, repo, "sh", "-c", "echo x >> untracked.txt")
    assert p.returncode == 0, p.stderr
    assert "fetched from box" in p.stderr
    base = actor.git("rev-parse", "refs/agent-base/s", cwd=repo).strip()
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("rev-parse", f"{tip}^", cwd=repo).strip() == base
    assert actor.git("show", f"{tip}:untracked.txt", cwd=repo) == "mine\nx\n"
    assert (repo / "untracked.txt").read_text() == "mine\n"  # only apply changes the worktree
    r = actor.agent("review", "s", "--stat", cwd=repo)
    assert r.returncode == 0 and "untracked.txt" in r.stdout, r.stdout + r.stderr
    a = actor.agent("apply", "s", cwd=repo)
    assert a.returncode == 0, a.stderr
    assert (repo / "untracked.txt").read_text() == "mine\nx\n"
    row = [ln.split() for ln in actor.agent("list", cwd=repo).stdout.splitlines()][1]
    assert row[:5] == ["s", "agent/s", "idle", "remote", "box"], row


def test_run_on_an_incremental_run(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    assert run_on(actor, repo, "sh", "-c", "echo one > a.txt").returncode == 0
    first = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    (repo / "mine.txt").write_text("edited here meanwhile\n")
    actor.own(repo)
    p = run_on(actor, repo, "sh", "-c", "cat mine.txt > b.txt; cat a.txt >> b.txt")
    assert p.returncode == 0, p.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert tip != first
    assert actor.git("show", f"{tip}:b.txt", cwd=repo) == "edited here meanwhile\none\n"
    # nothing new the third time: the branch is left as it is
    p = run_on(actor, repo, "true")
    assert p.returncode == 0 and "nothing new" in p.stderr, p.stderr
    assert actor.git("rev-parse", "agent/s", cwd=repo).strip() == tip


def test_list_says_local_for_a_local_session(actor: Actor) -> None:
    repo = actor.make_repo("repo")
    assert actor.agent("run", "-s", "here", "--", "true", cwd=repo).returncode == 0
    row = [ln.split() for ln in actor.agent("list", cwd=repo).stdout.splitlines()][1]
    assert row[:4] == ["here", "agent/here", "idle", "local"], row


def test_fetch_brings_back_the_remote_session(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    assert run_on(actor, repo, "sh", "-c", "echo remote > r.txt").returncode == 0
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    actor.git("update-ref", "-d", "refs/heads/agent/s", cwd=repo)  # lost here
    p = actor.agent("fetch", "s", cwd=repo)
    assert p.returncode == 0 and "fetched from box" in p.stderr, p.stderr
    assert actor.git("rev-parse", "agent/s", cwd=repo).strip() == tip
    p = actor.agent("fetch", "--all", cwd=repo)
    assert p.returncode == 0 and "nothing new from box" in p.stderr, p.stderr
    actor.agent("run", "-s", "here", "--", "true", cwd=repo)
    p = actor.agent("fetch", "here", cwd=repo)
    assert p.returncode != 0 and p.stderr.count("\n") == 1 and "did not run on a remote" in p.stderr


def _crafted(actor: Actor, repo: Path, base: str, kind: str) -> Path:
    """A bundle a hostile worker sends back: agent/s with a `.git` dir (or a second ref)."""
    d = Path(tempfile.mkdtemp(prefix="git-agent-hostile-"))
    os.chmod(d, 0o755)
    actor.own(d)
    r = d / "r"
    actor.git("clone", "-q", "--no-local", str(repo), str(r), cwd=d)
    actor.git("fetch", "-q", str(repo), f"{base}:refs/b", cwd=r)

    def git(*a: str, input: bytes | None = None) -> str:
        return actor.git(*a, cwd=r, input=input).strip()

    blob = git("hash-object", "-w", "--stdin", input=b"[core]\n\thooksPath = /tmp\n")
    inner = git("mktree", input=f"100644 blob {blob}\tconfig\n".encode())
    entries = git("ls-tree", base).splitlines()
    top = [*entries, f"040000 tree {inner}\t.git"] if kind == "dotgit" else entries
    tree = actor.run(["git", "mktree"], cwd=r,
                     input="\n".join(top).encode() + b"\n").stdout.strip()
    if not tree:  # mktree refuses `.git`: write the tree as is
        data = b""
        for line in sorted(top, key=lambda t: t.split("\t")[1]):
            meta, name = line.split("\t")
            mode, _, oid = meta.split()
            data += f"{mode.lstrip('0')} ".encode() + name.encode() + b"\0" + bytes.fromhex(oid)
        tree = git("hash-object", "-w", "-t", "tree", "--literally", "--stdin", input=data)
    tip = git("commit-tree", tree, "-p", base, "-m", f"agent\n\nAgent-Base: {base}")
    git("update-ref", "refs/heads/agent/s", tip)
    # a second branch beside ours: `main`, moved onto a commit of the remote's
    git("update-ref", "refs/heads/main", git("commit-tree", tree, "-p", base, "-m", "evil"))
    refs = ["agent/s", "main"] if kind == "tworefs" else ["agent/s"]
    out = d / "b.bundle"
    git("bundle", "create", "-q", str(out), *refs, "--not", base)
    out.chmod(0o644)
    (d / "tip").write_text(tip)
    return out


def test_a_crafted_bundle_from_a_hostile_worker_is_refused(actor: Actor, sshd: Sshd) -> None:
    """Promise (docs/security.md, docs/remote.md): the remote is as untrusted as the agent; a
    bundle that fails a check is refused with the reason, and nothing of it is imported."""
    repo = setup(actor, sshd)
    assert run_on(actor, repo, "sh", "-c", "echo honest > h.txt").returncode == 0
    before = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    base = actor.git("rev-parse", "refs/agent-base/s", cwd=repo).strip()
    main = actor.git("rev-parse", "main", cwd=repo).strip()
    for kind, why in (("dotgit", "fails git's checks"), ("tworefs", "2 refs")):
        path = _crafted(actor, repo, base, kind)
        tip = (path.parent / "tip").read_text()
        script = (f"#!/bin/sh\nhead -n 1 >/dev/null\n"
                  f"printf '{{\"bytes\": %d}}\\n' $(wc -c < {path})\n"
                  f"cat {path}\necho '{{\"protocol\": 1, \"ok\": true}}'\n")
        try:
            with remote_git_agent(sshd, script):
                p = actor.agent("fetch", "s", cwd=repo)
        finally:
            shutil.rmtree(path.parent)
        assert p.returncode != 0 and "Traceback" not in p.stderr
        assert p.stderr.count("\n") == 1 and why in p.stderr, p.stderr
        assert actor.git("rev-parse", "agent/s", cwd=repo).strip() == before
        probe = actor.run(["git", "cat-file", "-e", tip], cwd=repo)
        assert probe.returncode != 0, f"{kind}: the crafted commit arrived"
        assert actor.git("rev-parse", "main", cwd=repo).strip() == main


def test_no_secret_of_yours_in_any_remote_cmdline(actor: Actor, sshd: Sshd) -> None:
    """Promise (docs/remote.md): API keys travel in the request, never in argv: while the
    agent runs on the remote, no process's /proc/PID/cmdline holds the key's value."""
    repo = setup(actor, sshd)
    secret = "sk-" + os.urandom(12).hex()
    env = {"GA_TEST_KEY": secret}
    argv = ["git", "agent", "run", "--on", "box", "-s", "s", "--pass-env", "GA_TEST_KEY", "--",
            "sh", "-c", 'printf %s "$GA_TEST_KEY" > got.txt; read line']
    p = subprocess.Popen(actor._with_env(argv, env), cwd=repo, env={**actor.env, **env},
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        running = False
        while not running:
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the agent never started on the remote"
            running = any(c.startswith(b"sh\0-c\0printf")
                          for c in cmdlines(pwd_uid(sshd.user)).values())
            time.sleep(0.02)
        seen = [c.decode(errors="replace") for c in cmdlines().values() if secret.encode() in c]
    finally:
        out, err = p.communicate(b"\n", timeout=120)
    assert p.returncode == 0, err
    assert seen == []
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("show", f"{tip}:got.txt", cwd=repo) == secret  # it did travel


def pwd_uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def test_a_remote_that_cannot_sandbox_never_runs_the_agent(actor: Actor, sshd: Sshd) -> None:
    """Fail closed: a remote whose git agent cannot set up the sandbox (here its bwrap is
    configured to a missing file) refuses the run; the agent never runs there, unsandboxed or
    not, and nothing comes back."""
    repo = setup(actor, sshd)
    gitconfig = Path(f"~{sshd.user}").expanduser() / ".gitconfig"
    gitconfig.write_text("[agent]\n\tbwrap = /nonexistent/bwrap\n")
    try:
        p = run_on(actor, repo, "sh", "-c", "echo ran > ran.txt; echo ran > /tmp/ga-ran-$$")
    finally:
        gitconfig.unlink()
    assert p.returncode != 0
    assert "bwrap" in p.stderr and "nothing new from box" in p.stderr, p.stderr
    assert actor.run(["git", "rev-parse", "-q", "--verify", "agent/s"], cwd=repo).returncode != 0
    store = Path(f"~{sshd.user}").expanduser() / ".local/share/git-agent/remote"
    assert not list(store.glob("worktrees/*/s/ran.txt")) and not list(Path("/tmp").glob("ga-ran-*"))


def test_run_on_gives_the_agent_a_terminal_when_you_have_one(actor: Actor, sshd: Sshd) -> None:
    """Interactive: on a terminal the run goes through `ssh -t` (the agent sees a tty), while the
    bundles travel on their own connections, where the agent's output cannot reach them."""
    repo = setup(actor, sshd)
    probe = "if [ -t 0 ]; then echo tty; else echo none; fi > tty.txt"
    cmd = f"git agent run --on box -s s -- sh -c '{probe}; printf \"\\033[2Jgarbage\\n\"'"
    p = actor.run(["script", "-qec", cmd, "/dev/null"], cwd=repo)
    assert p.returncode == 0, p.stdout + p.stderr
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("show", f"{tip}:tty.txt", cwd=repo) == "tty\n"
    assert "garbage" in p.stdout
    # without a terminal: no pty (ssh -T), the agent's stdin is ours
    assert run_on(actor, repo, "sh", "-c", probe).returncode == 0
    tip = actor.git("rev-parse", "agent/s", cwd=repo).strip()
    assert actor.git("show", f"{tip}:tty.txt", cwd=repo) == "none\n"


def test_parallel_remote_sessions_of_one_repository_all_succeed(actor: Actor,
                                                                 sshd: Sshd) -> None:
    """Four sessions started at once: the base of each is received under the repository's lock
    on the remote (one object store), each gets its own worktree, each comes back."""
    repo = setup(actor, sshd)
    (repo / "untracked.txt").write_text("shared\n")
    actor.own(repo)
    names = [f"p{i}" for i in range(4)]
    procs = [subprocess.Popen(
        actor._argv(["git", "agent", "run", "--on", "box", "-s", n, "--", "sh", "-c",
                     f"cat untracked.txt > {n}.txt; echo {n} >> {n}.txt"]),
        cwd=repo, env=actor.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE) for n in names]
    for n, p in zip(names, procs, strict=True):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, (n, err.decode())
        assert actor.git("show", f"agent/{n}:{n}.txt", cwd=repo) == f"shared\n{n}\n"


def test_run_on_never_takes_over_another_worktrees_session(actor: Actor, sshd: Sshd) -> None:
    """Session s is the main worktree's (a local run): `run --on -s s` from a linked worktree
    refuses in one line naming it, before anything goes to the remote; agent/s and
    refs/agent-base/s stay as they were (docs/security.md, "Sessions of another worktree")."""
    repo = setup(actor, sshd)
    p = actor.agent("run", "-s", "s", "--", "sh", "-c", "echo mine > work-of-A", cwd=repo)
    assert p.returncode == 0, p.stderr
    refs = actor.git("for-each-ref", "refs/agent-base/", "refs/heads/agent/", cwd=repo)
    other = repo.parent / "B"
    actor.git("worktree", "add", "-q", "--detach", str(other), cwd=repo)
    p = run_on(actor, other, "sh", "-c", "echo other > planted-by-B")
    assert p.returncode != 0 and len(p.stderr.splitlines()) == 1, p.stderr
    assert f"of the worktree {repo}" in p.stderr and "-s NAME" in p.stderr, p.stderr
    assert actor.git("for-each-ref", "refs/agent-base/", "refs/heads/agent/", cwd=repo) == refs


def test_run_on_bad_input_is_one_line_and_creates_nothing(actor: Actor) -> None:
    repo = actor.make_repo("repo")
    p = actor.agent("run", "--on", "nope", "--", "true", cwd=repo)
    assert p.returncode != 0 and p.stderr == "git agent: no remote 'nope' (remotes: none; " \
        "`git agent remote add NAME URL`)\n", p.stderr
    actor.git("config", "agent.remote.box.url", "ssh://127.0.0.1:1", cwd=repo)
    p = actor.agent("run", "--on", "box", "--mount", "~/.cache", "--", "true", cwd=repo)
    assert p.returncode != 0 and p.stderr.count("\n") == 1 and "not with --on" in p.stderr
    p = actor.agent("run", "--on", "box", "--", "true", cwd=repo)  # nobody listens there
    assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
    assert "cannot reach 127.0.0.1 over ssh" in p.stderr
    assert actor.git("for-each-ref", "refs/agent-base/", "refs/heads/agent/", cwd=repo) == ""
    assert "no sessions" in actor.agent("list", cwd=repo).stderr


def test_run_on_logs_in_once_and_leaves_no_master_behind(actor: Actor, sshd: Sshd) -> None:
    """The three connections share one ssh login (ControlMaster, in a private dir), and the
    master git agent started is gone when run --on returns."""
    repo = setup(actor, sshd)
    log = sshd.dir / "log"
    before = log.read_text().count("Accepted publickey")
    tmp = actor.base / "tmp"  # the master's dir goes here: other runs on the machine use /tmp
    tmp.mkdir()
    actor.own(tmp)
    assert run_on(actor, repo, "sh", "-c", "echo x > x.txt",
                  env={"TMPDIR": str(tmp)}).returncode == 0
    assert log.read_text().count("Accepted publickey") - before == 1
    # this sshd's port: other test runs on the machine have masters of their own
    left = procs(lambda c: b"ControlMaster=yes" in c and b"\0%d\0" % sshd.port in c)
    assert left == [] and list(tmp.iterdir()) == []


def _bundle_bytes(p: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    """What GIT_AGENT_DEBUG says of the bundles: bytes sent (the base), bytes received."""
    import re

    sent = re.search(r"debug: base bundle sent: (\d+) bytes", p.stderr)
    got = re.search(r"debug: agent/s bundle received: (\d+) bytes", p.stderr)
    assert sent and got, p.stderr
    return int(sent.group(1)), int(got.group(1))


def test_incremental_runs_send_small_bundles_both_ways(actor: Actor, sshd: Sshd) -> None:
    """The issue's goal (docs/remote.md, "Speed"): when nothing changed nothing is sent either
    way (the remote has the base: its 100 KB untracked file does not go again); one file
    edited on each side, each bundle stays under 1 KB."""
    repo = setup(actor, sshd)
    (repo / "big.txt").write_bytes(os.urandom(50_000).hex().encode())  # untracked, 100 KB
    actor.own(repo)
    debug = {"GIT_AGENT_DEBUG": "1"}
    p = run_on(actor, repo, "sh", "-c", "echo one > a.txt", env=debug)
    assert p.returncode == 0, p.stderr
    assert _bundle_bytes(p)[0] > 40_000  # 50 KB of entropy
    p = run_on(actor, repo, "true", env=debug)
    assert p.returncode == 0 and _bundle_bytes(p) == (0, 0), p.stderr
    with (repo / "big.txt").open("a") as f:
        f.write("one more line\n")
    p = run_on(actor, repo, "sh", "-c", "echo two >> a.txt", env=debug)
    assert p.returncode == 0, p.stderr
    sent, got = _bundle_bytes(p)
    assert 0 < sent <= 1024 and 0 < got <= 1024, (sent, got)
    assert actor.git("show", "agent/s:a.txt", cwd=repo) == "one\ntwo\n"
    assert actor.git("show", "agent/s:big.txt", cwd=repo).endswith("one more line\n")
