"""`git agent remote doctor` through a real sshd on loopback (tests/remote/conftest.py), as root
and as an unprivileged user: it passes on a sound remote and fails closed, in one line, on an
unreachable one, a host whose key is not the pinned one, and a remote without git agent."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import Actor
from tests.remote.conftest import Sshd


def setup(actor: Actor, sshd: Sshd, url: str | None = None, **kw: str) -> Path:
    repo = actor.make_repo("repo")
    conf = sshd.client(actor, **kw)
    actor.git("config", "agent.sshConfig", str(conf), cwd=repo)
    p = actor.agent("remote", "add", "box", url or sshd.url, cwd=repo)
    assert p.returncode == 0, p.stderr
    return repo


def doctor(actor: Actor, repo: Path) -> subprocess.CompletedProcess[str]:
    p = actor.agent("remote", "doctor", "box", cwd=repo)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_remote_doctor_passes_on_a_sound_remote(actor: Actor, sshd: Sshd) -> None:
    p = doctor(actor, setup(actor, sshd))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "every check passed" in p.stderr
    lines = p.stdout.splitlines()
    assert any(ln.startswith("ok    bwrap") for ln in lines), p.stdout
    assert not any(ln.startswith("FAIL") for ln in lines)


def test_remote_doctor_fails_closed_when_unreachable(actor: Actor, sshd: Sshd) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = doctor(actor, setup(actor, sshd, f"ssh://{sshd.user}@127.0.0.1:{port}"))
    assert p.returncode != 0 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "cannot reach 127.0.0.1 over ssh" in p.stderr


def test_remote_doctor_fails_closed_on_another_host_key(actor: Actor, sshd: Sshd,
                                                         tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                   check=True)
    other = (tmp_path / "k.pub").read_text().strip()
    p = doctor(actor, setup(actor, sshd, host_pub=other))
    assert p.returncode != 0 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "cannot reach" in p.stderr


@contextlib.contextmanager
def remote_git_agent(sshd: Sshd, script: str | None) -> Iterator[None]:
    """The remote user's git-agent replaced by script (None: removed) meanwhile."""
    bindir = Path(f"~{sshd.user}").expanduser() / ".local/bin"
    (bindir / "git-agent").rename(bindir / "git-agent.off")
    try:
        if script is not None:
            (bindir / "git-agent").write_text(script)
            (bindir / "git-agent").chmod(0o755)
        yield
    finally:
        (bindir / "git-agent.off").replace(bindir / "git-agent")


def test_remote_doctor_says_when_git_agent_is_missing(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    with remote_git_agent(sshd, None):
        p = doctor(actor, repo)
    assert p.returncode != 0 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "no git agent on 127.0.0.1" in p.stderr


def test_remote_doctor_fails_closed_on_a_failing_remote(actor: Actor, sshd: Sshd) -> None:
    """A worker that reports a FAIL (here with a terminal escape in it): exit 1, said plainly."""
    repo = setup(actor, sshd)
    answer = ('{"protocol": 1, "version": "9", "ok": false, "checks": [{"name": "bwrap", '
              '"status": "FAIL", "detail": "too old\\u001b]0;owned\\u0007", "fix": ""}]}')
    with remote_git_agent(sshd, f"#!/bin/sh\ncat >/dev/null\necho '{answer}'\n"):
        p = doctor(actor, repo)
    assert p.returncode == 1
    assert p.stdout.startswith("FAIL  bwrap: too old") and "\x1b" not in p.stdout
    assert "cannot sandbox an agent yet" in p.stderr and "no session will run there" in p.stderr


def test_remote_doctor_refuses_a_worker_that_answers_garbage(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    with remote_git_agent(sshd, "#!/bin/sh\ncat >/dev/null\necho 'Welcome to the box!'\n"):
        p = doctor(actor, repo)
    assert p.returncode != 0 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "gave no answer" in p.stderr


def test_ssh_never_forwards_your_ssh_agent(actor: Actor, sshd: Sshd) -> None:
    """Promise (docs/remote.md): a remote never gets your ssh agent, even when your ssh config
    asks to forward it for every host."""
    repo = setup(actor, sshd)
    conf = actor.base / "ssh" / "config"
    conf.write_text(conf.read_text().replace("  IdentityAgent none\n", "")
                    + "  ForwardAgent yes\n")
    sock = actor.base / "ssh" / "agent.sock"
    started = actor.run(["ssh-agent", "-s", "-a", str(sock)], check=True)
    pid = int(started.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    seen = Path(f"~{sshd.user}").expanduser() / "seen-auth-sock"
    seen.unlink(missing_ok=True)
    answer = ('{"protocol": 1, "version": "x", "ok": true, '
              '"checks": [{"name": "a", "status": "ok"}]}')
    try:
        with remote_git_agent(sshd, f"#!/bin/sh\ncat >/dev/null\n"
                              f"printf %s \"$SSH_AUTH_SOCK\" > {seen}\necho '{answer}'\n"):
            p = actor.agent("remote", "doctor", "box", cwd=repo,
                            env={"SSH_AUTH_SOCK": str(sock)})
    finally:
        actor.run(["kill", str(pid)])
    assert p.returncode == 0, p.stderr
    assert seen.exists() and seen.read_text() == ""
