"""A hostile worker's answers (the remote user's git-agent replaced by a script, through the
loopback sshd, as root and as an unprivileged user): nothing it says reaches your terminal as a
control sequence, its stderr cannot stall the conversation, its silence where it must answer is
cut, a nesting too deep is one line, and its `busy` does not keep `drop --force` from dropping
the session here (docs/security.md, "What comes back from a remote machine")."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import Actor
from tests.remote.conftest import Sshd
from tests.remote.test_over_ssh import remote_git_agent, setup

ESC = "\\u001b]0;OWNED\\u0007\\u001b[2J"  # in the worker's JSON: a title change, a clear


def _ran(actor: Actor, sshd: Sshd) -> Path:
    repo = setup(actor, sshd)
    p = actor.agent("run", "--on", "box", "-s", "s", "--", "sh", "-c", "echo x > x.txt",
                    cwd=repo)
    assert p.returncode == 0, p.stderr
    return repo


def _one_line(p: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in p.stderr and "\x1b" not in p.stderr + p.stdout, p.stderr
    assert p.stderr.count("\n") == 1, p.stderr
    return p.stderr


def _answering(attach: str, other: str) -> str:
    """A worker: `attach` to the attach op, `{"bytes": 0}` and `other` to anything else."""
    return (f"#!/bin/sh\nread -r line\ncase \"$line\" in\n*'\"op\": \"attach\"'*) "
            f"echo '{attach}' ;;\n*) echo '{{\"bytes\": 0}}'; echo '{other}' ;;\nesac\n")


def test_nothing_a_worker_says_reaches_your_terminal_raw(actor: Actor, sshd: Sshd) -> None:
    """Every string of an answer is made printable where answers are parsed; a field the
    protocol types (a signal is a number) is refused when it is not one."""
    repo = _ran(actor, sshd)
    text_signal = f'{{"ok": true, "known": true, "signal": "9{ESC}"}}'
    with remote_git_agent(sshd, _answering(text_signal, text_signal)):
        p = actor.agent("attach", "s", cwd=repo)
    assert p.returncode != 0
    assert "gave a malformed answer ('signal' is not int)" in _one_line(p)
    # a string field with escapes: said, its control characters shown as '?'
    error = f'{{"error": "no{ESC} such session"}}'
    with remote_git_agent(sshd, _answering(error, error)):
        p = actor.agent("attach", "s", cwd=repo)
    assert p.returncode != 0
    assert "the worker on 127.0.0.1: no?]0;OWNED??[2J such session" in _one_line(p)
    # a well-typed signal is said as the number it is
    killed = '{"ok": true, "known": true, "running": false, "signal": 9}'
    with remote_git_agent(sshd, _answering(killed, '{"ok": true}')):
        p = actor.agent("attach", "s", cwd=repo)
    assert p.returncode == 0, p.stderr
    assert "has finished on box (killed by signal 9)" in p.stderr and "\x1b" not in p.stderr


def test_a_worker_flooding_stderr_cannot_stall_fetch(actor: Actor, sshd: Sshd) -> None:
    """stderr is read all along (bounded: its last 4 KiB kept for the error line)."""
    repo = _ran(actor, sshd)
    flood = ("#!/bin/sh\nhead -n 1 >/dev/null\nhead -c 1048576 /dev/zero >&2\n"
             "echo '{\"bytes\": 0}'\necho '{\"ok\": true}'\n")
    with remote_git_agent(sshd, flood):
        p = actor.agent("fetch", "s", cwd=repo, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "git agent: session 's': nothing new from box\n", p.stderr
    # a worker that breaks off after the flood: its last line said, once
    dies = ("#!/bin/sh\nhead -n 1 >/dev/null\nhead -c 1048576 /dev/zero | tr '\\0' x >&2\n"
            "printf '\\nlast words\\033[2J\\n' >&2\nexit 3\n")
    with remote_git_agent(sshd, dies):
        p = actor.agent("fetch", "s", cwd=repo, timeout=120)
    assert p.returncode != 0
    assert "gave no answer (exit status 3: last words?[2J)" in _one_line(p)


def test_a_worker_silent_where_it_must_answer_is_cut_off(actor: Actor, sshd: Sshd) -> None:
    """GIT_AGENT_REMOTE_TIMEOUT seconds of silence while an answer is due: one line."""
    repo = _ran(actor, sshd)
    with remote_git_agent(sshd, "#!/bin/sh\nhead -n 1 >/dev/null\nexec sleep 30\n"):
        p = actor.agent("fetch", "s", cwd=repo, env={"GIT_AGENT_REMOTE_TIMEOUT": "2"},
                        timeout=120)
    assert p.returncode != 0
    assert ("the worker on 127.0.0.1 said nothing for 2 s while answering: cut off "
            "(GIT_AGENT_REMOTE_TIMEOUT sets the time)") in _one_line(p)
    # a worker that never reads what is sent (the fetch request is small: the bundle of a
    # prepare is not) is the same: `run --on` is cut, nothing runs
    deaf = "#!/bin/sh\necho '{\"have\": []}'\nexec sleep 30\n"
    (repo / "big.bin").write_bytes(os.urandom(16 << 20))
    actor.own(repo / "big.bin")
    with remote_git_agent(sshd, deaf):
        p = actor.agent("run", "--on", "box", "-s", "t", "--", "true", cwd=repo,
                        env={"GIT_AGENT_REMOTE_TIMEOUT": "2"}, timeout=120)
    assert p.returncode != 0
    assert "said nothing for 2 s while reading what was sent" in _one_line(p)
    assert actor.git("for-each-ref", "refs/heads/agent/t", "refs/agent-base/t", cwd=repo) == ""


def test_a_deeply_nested_answer_is_one_line(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    deep = "[" * 100000 + "]" * 100000
    script = f"#!/bin/sh\ncat >/dev/null\necho '{{\"checks\": {deep}}}'\n"
    with remote_git_agent(sshd, script):
        p = actor.agent("remote", "doctor", "box", cwd=repo)
    assert p.returncode != 0 and p.stdout == ""
    assert "gave a malformed answer (nested too deep)" in _one_line(p)


def test_drop_force_drops_here_what_a_remote_says_is_busy(actor: Actor, sshd: Sshd) -> None:
    repo = _ran(actor, sshd)
    busy = f"#!/bin/sh\ncat >/dev/null\necho '{{\"ok\": false, \"busy\": \"run{ESC}\"}}'\n"
    with remote_git_agent(sshd, busy):
        p = actor.agent("drop", "--force", "s", cwd=repo)
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stderr and "Traceback" not in p.stderr
    assert p.stderr.splitlines() == [
        "git agent: dropped session 's'",
        "git agent: note: session 's' is busy on box (run?]0;OWNED??[2J): its copy there (its "
        "worktree and state) is left"], p.stderr
    assert actor.git("for-each-ref", "refs/heads/agent/", "refs/agent-base/", cwd=repo) == ""
