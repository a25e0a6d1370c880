"""The local side of a remote session: the base sent in the prepare conversation, the run over
its own connection (a pty when interactive), `agent/S` brought back by the fetch conversation and
imported with every check (docs/remote.md, "Framing"); the connections are the engine's
(remote/engine.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from git_agent.errors import GitAgentError
from git_agent.remote import answers, remotes
from git_agent.remote.engine import Engine
from git_agent.repo import Worktree
from git_agent.session import Session

MAX_LINE = remotes.MAX_ANSWER
STDERR_KEPT = 4096  # the end of what the worker says on stderr, for the error line


def _trace(what: str, n: int) -> None:
    """With GIT_AGENT_DEBUG set: each bundle's size on stderr (the benchmark reads it)."""
    if os.environ.get("GIT_AGENT_DEBUG"):
        sys.stderr.write(f"git agent: debug: {what} {n} bytes\n")


class Conversation:
    """One connection to the worker (no pty): JSON lines and counted bytes both ways."""

    def __init__(self, engine: Engine, request: dict[str, object] | None):
        """request None: the worker is started now and asked later (ask()), so its start
        overlaps the run; in its own process group, so a ^C meant for the agent spares it."""
        self.engine = engine
        self.p = subprocess.Popen(engine.worker(), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  process_group=0 if request is None else None)
        # stderr drained all along (a worker blocked on a full pipe never answers): its last
        # STDERR_KEPT bytes kept for the error line, the rest discarded
        self.said = bytearray()
        self.drain = threading.Thread(target=self._drain, daemon=True)
        self.drain.start()
        self.cut: str | None = None  # what the watchdog cut the worker in
        if request is not None:
            self.ask(request)

    def _drain(self) -> None:
        assert self.p.stderr is not None
        fd = self.p.stderr.fileno()
        while chunk := os.read(fd, 1 << 16):
            self.said += chunk
            del self.said[:-STDERR_KEPT]

    def _watch(self, what: str) -> threading.Timer:
        """The worker must get on with `what` within answers.silence() seconds, or is killed."""
        def cut() -> None:
            self.cut = what
            self.p.kill()

        t = threading.Timer(answers.silence(), cut)
        t.daemon = True
        t.start()
        return t

    def ask(self, request: dict[str, object]) -> None:
        self.send({"protocol": remotes.PROTOCOL, **request})

    def alive(self) -> bool:
        return self.p.poll() is None

    def send(self, obj: dict[str, object]) -> None:
        self.write(json.dumps(obj).encode() + b"\n")

    def write(self, data: bytes) -> None:
        assert self.p.stdin is not None
        t = self._watch("reading what was sent")
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except BrokenPipeError:
            self.fail()
        finally:
            t.cancel()

    def line(self) -> dict[str, object]:
        """The worker's next JSON line, checked and made printable (remote/answers.py); its
        error, or a broken connection, raised."""
        assert self.p.stdout is not None
        t = self._watch("answering")
        try:
            raw = self.p.stdout.readline(MAX_LINE + 1)
        finally:
            t.cancel()
        if not raw.endswith(b"\n"):
            self.fail("gave no answer")
        try:
            got = answers.parse(raw)
        except answers.NotJson:
            self.fail("gave no answer")
        except answers.Malformed as e:
            self.close()
            raise GitAgentError(f"the worker on {self.engine.name} gave a malformed answer "
                                f"({e})") from None
        if got.get("error"):
            self.close()
            raise GitAgentError(f"the worker on {self.engine.name}: {got['error']}")
        return got

    def copy_to(self, fd: int, n: int) -> None:
        assert self.p.stdout is not None
        while n > 0:
            t = self._watch("sending the bundle")  # each MiB within the time, or cut
            try:
                chunk = self.p.stdout.read(min(n, 1 << 20))
            finally:
                t.cancel()
            if not chunk:
                self.fail()
            os.write(fd, chunk)
            n -= len(chunk)

    def close(self) -> int:
        for f in (self.p.stdin, self.p.stdout):
            if f is not None:
                with contextlib.suppress(BrokenPipeError):  # a write buffered for a gone worker
                    f.close()
        try:  # a worker that answered must end when its input does
            self.p.wait(answers.silence())
        except subprocess.TimeoutExpired:
            self.cut = self.cut or "ending"
            self.p.kill()
            self.p.wait()
        self.drain.join(5)  # its pipe ends with the worker (bounded: a stray holder of it)
        return self.p.returncode

    def fail(self, what: str = "broke off") -> None:
        self.close()
        if self.cut:
            raise GitAgentError(f"the worker on {self.engine.name} said nothing for "
                                f"{answers.silence():g} s while {self.cut}: cut off "
                                f"({answers.TIMEOUT_ENV} sets the time)")
        text = bytes(self.said).decode(errors="replace")
        said = self.engine.explain(self.p.returncode, text)
        if said:
            raise GitAgentError(said)
        err = text.strip().splitlines()
        last = remotes.printable(err[-1]) if err else ""
        raise GitAgentError(f"the worker on {self.engine.name} {what} (exit status "
                            f"{self.p.returncode}{': ' + last if last else ''})")


def call(engine: Engine, request: dict[str, object]) -> dict[str, object]:
    """Send one request to the worker, return its answer; any failure is one GitAgentError."""
    c = Conversation(engine, request)
    assert c.p.stdin is not None
    c.p.stdin.close()  # one request: the worker may read to the end of its input
    answer = c.line()
    c.close()
    return answer


def prepare(engine: Engine, wt: Worktree, session: Session, *, repo_id: str, base: str,
            request: dict[str, object]) -> dict[str, object]:
    """Send the base (a thin bundle of what the remote lacks); the worker's answer names the
    ticket of the prepared run and the path of its worktree."""
    c = Conversation(engine, {"op": "prepare", "repo_id": repo_id, "base": base,
                              "session": session.name, "path": str(wt.root), **request})
    from git_agent.remote import bundle  # here: pygit2, which a warm run may never need

    have = c.line().get("have")
    if not isinstance(have, list) or not all(isinstance(h, str) for h in have):
        c.close()
        raise GitAgentError(f"the worker on {engine.name} gave a malformed answer")
    with tempfile.TemporaryDirectory(dir=session.dir) as tmp:
        out = Path(tmp) / "base.bundle"
        if base not in have and bundle.make_base_bundle(wt, session, out, [str(h) for h in have]):
            size = out.stat().st_size
            c.send({"bytes": size})
            c.write(out.read_bytes())
        else:
            size = 0
            c.send({"bytes": 0})
        _trace("base bundle sent:", size)
    answer = c.line()
    c.close()
    return answer


def run(engine: Engine, ticket: str, *, tty: bool) -> int:
    """The prepared run over its own connection (or channel), the terminal's (or our) stdio
    passed through; the agent's exit status (255 over ssh: ssh failed, see remote/follow.py)."""
    return subprocess.run(engine.worker(tty=tty, ticket=ticket)).returncode


def fetch(engine: Engine, wt: Worktree, session: Session, *, repo_id: str,
          max_bytes: int | None = None, capture: bool = False,
          state: dict[str, object] | None = None,
          started: Conversation | None = None) -> str | None:
    """Bring agent/S back: the remote's bundle imported with every check (import_session);
    its tip, or None when the remote has nothing new. The caller holds the session's lock.
    capture: the remote captures a killed run first (detached.checkpoint); state: filled with
    the worker's last answer (whether the run still goes on there, how it ended); started: a
    worker connection opened earlier and not yet asked (used when still alive)."""
    state = {} if state is None else state
    base = wt.resolve(session.base_ref)
    if base is None:
        raise GitAgentError(f"session {session.name!r} has no base here")
    from git_agent.remote import bundle  # here: pygit2, which a warm run may never need

    if max_bytes is None:
        max_bytes = bundle.MAX_BUNDLE
    tip = wt.resolve(session.branch)
    request: dict[str, object] = {"op": "fetch", "repo_id": repo_id, "base": base,
                                  "session": session.name, "have": [tip] if tip else [],
                                  "capture": capture}
    if started is not None and started.alive():
        c = started
        c.ask(request)
    else:
        c = Conversation(engine, request)
    n = c.line().get("bytes")
    if not isinstance(n, int) or n < 0:
        c.close()
        raise GitAgentError(f"the worker on {engine.name} gave a malformed answer")
    _trace(f"{session.branch_name} bundle received:", n)
    if n > max_bytes:
        c.close()
        raise bundle.BundleRefused(f"the bundle is {n} bytes, over the cap of {max_bytes}")
    if n == 0:
        state.update(c.line())
        c.close()
        return None
    with tempfile.TemporaryDirectory(dir=session.dir) as tmp:
        path = Path(tmp) / "agent.bundle"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            c.copy_to(fd, n)
        finally:
            os.close(fd)
        state.update(c.line())
        c.close()
        return bundle.import_session(wt, session, path, max_bytes=max_bytes)
