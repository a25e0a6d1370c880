"""The worker's store on the remote: one bare repository per local repository id, the base
received into it under a per-repository lock, one worktree per session, the run handed to the
real `git agent run` by a ticket, and `agent/S` sent back as a bundle (docs/remote.md)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from git_agent import proc
from git_agent.errors import GitAgentError
from git_agent.remote import detached
from git_agent.remote.worker import Channel
from git_agent.session.names import check_name

_OID = re.compile(r"^[0-9a-f]{40}$")
_TICKET = re.compile(r"^[0-9a-f]{32}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_BASE_BUNDLE = 4 << 30
# run options that mean the same on the remote (paths of the local machine do not: refused)
FORWARDED = {"preset": "--preset", "net": "--net", "allow_hosts": "--allow-host",
             "allow_ports": "--allow-port", "pass_env": "--pass-env", "hide": "--hide",
             "no_capture": "--no-capture"}


def data_root() -> Path:
    """$XDG_DATA_HOME/git-agent/remote, default ~/.local/share/git-agent/remote."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "git-agent" / "remote"


def _field(req: dict[str, object], key: str, pattern: re.Pattern[str]) -> str:
    v = req.get(key)
    if not isinstance(v, str) or not pattern.match(v):
        raise GitAgentError(f"bad {key!r} in the request")
    return v


def _session(req: dict[str, object]) -> str:
    v = req.get("session")
    if not isinstance(v, str):
        raise GitAgentError("bad 'session' in the request")
    return check_name(v)


def store_of(repo_id: str) -> Path:
    return data_root() / f"{repo_id}.git"


@contextlib.contextmanager
def repo_lock(repo_id: str) -> Iterator[Path]:
    """The store of repo_id, created if needed, under an exclusive lock (concurrent fetches into
    one object store fail)."""
    root = data_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(root / f"{repo_id}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        store = store_of(repo_id)
        if not (store / "HEAD").exists():
            proc.git("init", "-q", "--bare", str(store), cwd=root)
        yield store
    finally:
        os.close(fd)


def _git(store: Path, *args: str, check: bool = True) -> str:
    return proc.git(*args, cwd=store, env={"GIT_DIR": str(store)}, check=check).decode().strip()


def _have(store: Path) -> list[str]:
    out = _git(store, "for-each-ref", "--format=%(objectname)", "refs/agent-base/")
    return sorted(set(out.split()))


def _receive(store: Path, chan: Channel, session: str, base: str) -> None:
    """Ask for the bundle of what the store lacks, take it in with fsck's checks."""
    known = _git(store, "cat-file", "-t", base, check=False) == "commit"
    have = [base] if known else _have(store)
    if base not in have:
        chan.write_line({"have": have})
        got = chan.read_line()
        n = got.get("bytes")
        if not isinstance(n, int) or not 0 <= n <= MAX_BASE_BUNDLE:
            raise GitAgentError("bad bundle size in the request")
        if n:
            fd, tmp = tempfile.mkstemp(prefix="base-", suffix=".bundle", dir=store)
            try:
                chan.copy_to(fd, n)
                os.close(fd)
                ref = f"refs/agent-base/{session}"
                proc.git("-c", "transfer.fsckObjects=true", "fetch", "-q", "--no-tags",
                         "--no-write-fetch-head", tmp, f"+{ref}:refs/git-agent/incoming",
                         cwd=store, env={"GIT_DIR": str(store)})
            finally:
                os.unlink(tmp)
    else:
        chan.write_line({"have": [base]})
        chan.read_line()
    if _git(store, "cat-file", "-t", base, check=False) != "commit":
        raise GitAgentError(f"the base {base} did not arrive")
    _git(store, "update-ref", f"refs/agent-base/{session}", base)


def _is_ours(path: Path, store: Path) -> bool:
    """Is path a worktree of the store (its .git file points into store/worktrees)?"""
    try:
        text = (path / ".git").read_text()
    except OSError:
        return False
    return text.startswith("gitdir: ") and Path(text[8:].strip()).parent == store / "worktrees"


def _exists(path: Path) -> bool:
    """Is path there, or behind a directory we may not search (taken either way)?"""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def _worktree(store: Path, repo_id: str, session: str, want: Path, base: str) -> Path:
    """The session's worktree, checked out at base: at want (the local path) when it is ours
    or can be made here, else under the store (said in the answer)."""
    record = store / "git-agent-sessions" / quote(session, safe="")
    known = Path(record.read_text()) if record.exists() else None
    fallback = data_root() / "worktrees" / repo_id / quote(session, safe="")
    others = {Path(r.read_text()) for r in record.parent.glob("*") if r != record} \
        if record.parent.is_dir() else set()
    for cand in (known, want, fallback):
        if cand is None or cand != known and cand in others:
            continue  # another session's worktree (run --attempts): a shared lower races
        if _is_ours(cand, store):
            proc.git("checkout", "-q", "-f", "--detach", base, cwd=cand)
            return cand
        if _exists(cand):
            continue  # someone else's (on a loopback test: the local worktree itself)
        try:
            cand.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        _git(store, "worktree", "prune")
        p = proc.run(["git", "--git-dir", str(store), "worktree", "add", "-q", "--detach",
                      str(cand), base], cwd=store, check=False)
        if p.returncode == 0:
            record.parent.mkdir(exist_ok=True)
            record.write_text(str(cand))
            return cand
    raise GitAgentError(f"no place for the session's worktree (tried {want} and {fallback})")


def _command(req: dict[str, object]) -> list[str]:
    cmd = req.get("command")
    if not isinstance(cmd, list) or not all(isinstance(a, str) and "\0" not in a for a in cmd):
        raise GitAgentError("bad 'command' in the request")
    return [str(a) for a in cmd]


def _flags(req: dict[str, object]) -> list[str]:
    flags = req.get("flags") or {}
    if not isinstance(flags, dict):
        raise GitAgentError("bad 'flags' in the request")
    out: list[str] = []
    for k, v in flags.items():
        opt = FORWARDED.get(k)
        if opt is None:
            raise GitAgentError(f"run option {k!r} is not forwarded to a remote")
        if v is True:
            out.append(opt)
        elif isinstance(v, str):
            out += [opt, v]
        elif isinstance(v, list) and all(isinstance(x, str | int) for x in v):
            for x in v:
                out += [opt, str(x)]
        elif v not in (None, False):
            raise GitAgentError(f"bad value for run option {k!r}")
    return out


def _env(req: dict[str, object]) -> dict[str, str]:
    env = req.get("env") or {}
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and _ENV_NAME.match(k) and isinstance(v, str) and "\0" not in v
            for k, v in env.items()):
        raise GitAgentError("bad 'env' in the request")
    return {str(k): str(v) for k, v in env.items()}


def prepare(req: dict[str, object], chan: Channel, *,
            sound: Callable[[], bool]) -> dict[str, object]:
    """Op prepare: receive the base, check out the session's worktree, and, only when doctor
    passes here (sound(), run meanwhile), leave a ticket for the run. The answer names the
    ticket and the path."""
    repo_id = _field(req, "repo_id", _OID)
    base = _field(req, "base", _OID)
    session = _session(req)
    path = req.get("path")
    cwd = req.get("cwd") or "."
    if not isinstance(path, str) or not os.path.isabs(path) or not isinstance(cwd, str) or \
            os.path.isabs(cwd) or ".." in Path(cwd).parts:
        raise GitAgentError("bad 'path' or 'cwd' in the request")
    command, flags, env = _command(req), _flags(req), _env(req)
    home = req.get("home")
    if home is not None and (not isinstance(home, str) or not os.path.isabs(home) or
                             "\0" in home or len(home) > 4096):
        raise GitAgentError("bad 'home' in the request")
    detached.refuse_if_running(repo_id, session)  # its worktree is that run's lower
    verdict: list[bool] = []
    doctor = threading.Thread(target=lambda: verdict.append(sound()), daemon=True)
    doctor.start()  # its probes while the base comes in
    with repo_lock(repo_id) as store:
        _receive(store, chan, session, base)
        wt = _worktree(store, repo_id, session, Path(path), base)
    doctor.join()
    if verdict != [True]:
        raise GitAgentError("git agent doctor fails here: no session runs on this remote "
                            "(`git agent remote doctor` says why)")
    where = wt / cwd if (wt / cwd).is_dir() else wt
    spec = {"cwd": str(where), "session": session, "command": command, "flags": flags,
            "env": env, "repo_id": repo_id, "tty": req.get("tty") is True, "home": home}
    if req.get("detach") is True:  # started now, with a pty for whoever attaches later
        _start(spec, tty=True)
        return {"ok": True, "detached": True, "path": str(wt)}
    return {"ok": True, "ticket": _write_ticket(spec), "path": str(wt)}


def _write_ticket(spec: dict[str, object]) -> str:
    ticket = secrets.token_hex(16)
    tickets = data_root() / "tickets"
    tickets.mkdir(exist_ok=True, mode=0o700)
    _expire(tickets)
    fd = os.open(tickets / ticket, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    return ticket


def _start(spec: dict[str, Any], *, tty: bool) -> None:
    """The real `git agent run` under a holder (detached.start): argv a list, the environment
    (API keys) in its environment, never its argv; the caller's own $HOME path as
    GIT_AGENT_HOME_ALIAS (run.main: HOME inside there when the sandbox can show it)."""
    argv = [sys.executable, "-m", "git_agent", "run", "-s", spec["session"], *spec["flags"],
            "--", *spec["command"]]
    env = {**os.environ, **spec["env"]}
    env.pop(HOME_ALIAS, None)
    if isinstance(spec.get("home"), str):
        env[HOME_ALIAS] = spec["home"]
    detached.start(spec["repo_id"], spec["session"], argv=argv, env=env, cwd=spec["cwd"],
                   tty=tty)


def attach_ticket(req: dict[str, object]) -> dict[str, object]:
    """Op attach: a ticket for `worker --ticket T` to join the session's run, or how it
    ended when it runs no more."""
    repo_id = _field(req, "repo_id", _OID)
    session = _session(req)
    st = detached.state(repo_id, session)
    if not st.get("running"):
        return {"ok": True, **st}
    return {"ok": True, "running": True,
            "ticket": _write_ticket({"attach": True, "repo_id": repo_id, "session": session})}


HOME_ALIAS = "GIT_AGENT_HOME_ALIAS"  # read (and removed) by run.main
TICKET_TTL = 600  # seconds: a prepared run whose connection never came is forgotten


def _expire(tickets: Path) -> None:
    """Tickets hold the request's environment (API keys): none outlives its use for long."""
    import time

    for t in tickets.iterdir():
        with contextlib.suppress(OSError):
            if t.stat().st_mtime < time.time() - TICKET_TTL:
                t.unlink()


def run_ticket(ticket: str) -> int:
    """`git-agent worker --ticket T`: the prepared run started as `git agent run` under its
    holder (the argv and environment come from the ticket file, never from the ssh command
    line), then joined; or, an attach ticket, an existing run joined."""
    if not _TICKET.match(ticket):
        raise GitAgentError("bad ticket")
    path = data_root() / "tickets" / ticket
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError):
        raise GitAgentError("no such prepared run (tickets are used once)") from None
    path.unlink()
    if not spec.get("attach"):
        _start(spec, tty=bool(spec.get("tty")))
    return detached.attach(spec["repo_id"], spec["session"])


def fetch(req: dict[str, object], chan: Channel) -> dict[str, object]:
    """Op fetch: agent/S as a bundle of what the client lacks (a line with its size, then its
    bytes); nothing when the branch is not a capture of the client's base."""
    repo_id = _field(req, "repo_id", _OID)
    base = _field(req, "base", _OID)
    session = _session(req)
    have = req.get("have") or []
    if not isinstance(have, list) or not all(isinstance(h, str) and _OID.match(h) for h in have):
        raise GitAgentError("bad 'have' in the request")
    store = store_of(repo_id)
    if not (store / "HEAD").exists():
        raise GitAgentError("this remote holds no session of this repository")
    if req.get("capture") is True:
        detached.checkpoint(repo_id, session)
    run = detached.state(repo_id, session)
    if run.get("running"):  # agent/S here is an older capture: nothing until it ends
        chan.write_line({"bytes": 0})
        return {"ok": True, **run}
    branch = f"refs/heads/agent/{session}"
    tip = _git(store, "rev-parse", "-q", "--verify", branch, check=False)
    msg = _git(store, "show", "-s", "--format=%B", tip, check=False) if tip else ""
    if not tip or tip in have or f"\nAgent-Base: {base}" not in "\n" + msg:
        chan.write_line({"bytes": 0})
        return {"ok": True, "tip": tip or None, **run}
    nots = [base] + [h for h in have if _git(store, "cat-file", "-t", h, check=False) == "commit"]
    fd, tmp = tempfile.mkstemp(prefix="fetch-", suffix=".bundle", dir=store)
    os.close(fd)
    try:
        _git(store, "bundle", "create", "-q", tmp, branch, "--not", *nots)
        size = os.path.getsize(tmp)
        chan.write_line({"bytes": size})
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                chan.write(chunk)
    finally:
        os.unlink(tmp)
    return {"ok": True, "tip": tip, **run}
