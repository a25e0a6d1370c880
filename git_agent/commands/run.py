"""`git agent run`: resolve the settings, lock the session, launch the sandbox, capture its work."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from git_agent import proc, repo
from git_agent import session as sessions
from git_agent.errors import GitAgentError, SandboxUnavailable, UsageError
from git_agent.repo import within
from git_agent.sandbox import build as sandbox
from git_agent.sandbox import bwrap, hardening, launch
from git_agent.settings import config, presets

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from typing import Any


class CommandNotFound(GitAgentError):
    exit_code = 127  # as a shell says it


def say(msg: str) -> None:
    print(f"git agent: {msg}", file=sys.stderr, flush=True)


def real_home() -> Path:
    home = os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    p = Path(home)
    if not p.is_absolute() or p == Path("/"):
        raise UsageError(
            f"HOME={home!r} cannot hold an agent home; set HOME to your home directory"
        )
    return p


def default_command(cfg: config.GitConfig) -> list[str]:
    configured = cfg.get_str("agent.command")
    if configured:
        try:
            words = shlex.split(configured)
        except ValueError as e:
            raise UsageError(f"agent.command: {e}") from None
        if words:
            return words
    return [os.environ.get("SHELL") or "/bin/sh"]


class _Background(threading.Thread):
    """The base snapshot (then the capture's imports) runs while the agent does; nothing
    waits for it until capture."""

    def __init__(self, worktree: repo.Worktree, session: sessions.Session,
                 hide: Sequence[Path] = ()):
        super().__init__(daemon=True, name="git-agent-base")
        self.worktree = worktree
        self.session = session
        self.hide = hide
        self.result: Any = None
        self.error: BaseException | None = None
        self.stopping = False

    def run(self) -> None:
        try:
            from git_agent.capture import snapshot as base

            self.result = base.snapshot(worktree=self.worktree, scratch=self.session.dir,
                                        hide=self.hide)
            # recorded now, so `review` of the running session can capture a live view
            base.keep(worktree=self.worktree, session=self.session, base=self.result)
        except BaseException as e:  # noqa: BLE001 - reported by the capture step
            self.error = e
            return
        if not self.stopping:
            # while the agent still runs: the capture's imports (pygit2: ~50 ms) are then ready
            from git_agent.capture import commit as capture  # noqa: F401

    def stop(self) -> None:
        """Nobody needs the snapshot: kill its git, and wait for the thread to end. It must
        not still run while the interpreter exits: an import of pygit2 then (or any C code
        called meanwhile) can crash it."""
        if not self.is_alive():
            return  # never started, or done
        self.stopping = True
        proc.stop_background()
        self.join()


def stale_paths(session: sessions.Session, worktree: repo.Worktree) -> list[str]:
    """Paths the session holds that changed in the real worktree since its last run ended."""
    last = session.read_meta().get("last_run") or {}
    end = last.get("end") if isinstance(last, dict) else None
    if not isinstance(end, (int, float)) or not session.upper.is_dir():
        return []
    from git_agent.capture import overlay

    out: list[str] = []
    for ch in overlay.walk(session.upper):  # by directory fds: never follows a symlink
        if ch.kind not in (overlay.Kind.FILE, overlay.Kind.SYMLINK):
            continue
        rel = os.fsdecode(ch.path)
        try:
            st = os.lstat(worktree.root / rel)
        except OSError:
            continue
        if max(st.st_mtime, st.st_ctime) > end:
            out.append(rel)
    return sorted(out)


def main(
    *,
    session_name: str | None = None,
    preset: str | None = None,
    net: str | None = None,
    allow_ports: Sequence[int] = (),
    allow_sockets: Sequence[str] = (),
    pass_env: Sequence[str] = (),
    hide: Sequence[str] = (),
    mounts: Sequence[str] = (),
    home: str | None = None,
    no_capture: bool = False,
    command: Sequence[str] = (),
) -> int:
    if os.geteuid() == 0:
        sandbox.start_root_etc_scan()  # in parallel with what follows
    reading = config.start_read()  # git config beside git rev-parse: neither needs the other
    try:
        wt = repo.find_worktree()
    except BaseException:
        reading()  # reaped (it is quick); the error is find_worktree's
        raise
    cfg = config.read(started=reading)
    name = session_name if session_name is not None else sessions.default_name(wt)
    session = sessions.get(wt, name)
    state_root = sessions.state_root()
    probes = state_root / "probes.json"  # bwrap's version, env's abilities
    bw = bwrap.find(cfg.get_str("agent.bwrap"), cache=probes)
    home_p = real_home()
    agent_home = config.expand_home(home or cfg.get_str("agent.home") or "~/aihome", home_p)
    if not agent_home.is_absolute():
        raise UsageError(f"agent home {agent_home} must be an absolute path")
    cmd = list(command) or default_command(cfg)
    chosen = presets.resolve(command=cmd, name=preset, cfg=cfg)
    cmd = list(chosen.command) or cmd

    net_mode = net or cfg.get_str("agent.net") or "host"
    if net_mode not in config.NET_MODES:
        raise UsageError(f"agent.net: {net_mode!r} is not one of {', '.join(config.NET_MODES)}")
    if allow_ports and net_mode != "isolated":
        raise UsageError(f"--allow-port needs --net isolated (this run's mode is {net_mode})")
    # a configured allowPort belongs to a configured isolated mode; --net none/host wins over it
    ports = _ports([*cfg.get_all("agent.allowPort"), *map(str, allow_ports)])
    if net_mode != "isolated":
        ports = []

    owner = wt.root.stat().st_uid
    if os.geteuid() != 0 and owner != os.geteuid():
        raise SandboxUnavailable(
            f"{wt.root} is owned by uid {owner}; the sandbox can only map your "
            "own uid: run git agent as that user, or chown the worktree"
        )

    mount_specs = [*config.DEFAULT_MOUNTS, *chosen.mounts, *cfg.get_all("agent.mount"), *mounts]
    explicit = {*cfg.get_all("agent.mount"), *mounts}
    home_mounts, warnings = sandbox.parse_home_mounts(mount_specs, home=home_p, explicit=explicit)
    protect = cfg.get_all("agent.protect") or list(config.DEFAULT_PROTECT)
    hide_paths = _hide_paths(wt, [*cfg.get_all("agent.hide")], list(hide), warnings)
    sockets = [
        Path(os.path.abspath(os.path.expanduser(s)))
        for s in [*cfg.get_all("agent.allowSocket"), *allow_sockets]
    ]
    set_env = dict(chosen.set_env)
    ssh_sock = os.environ.get("SSH_AUTH_SOCK")
    if ssh_sock and Path(ssh_sock) in sockets:
        set_env["SSH_AUTH_SOCK"] = ssh_sock
    env = sandbox.environment(
        home=home_p,
        session=name,
        pass_env=[
            *chosen.pass_env,
            *presets.expand_env_names([*cfg.get_all("agent.passEnv"), *pass_env]),
        ],
        set_env=set_env,
    )

    sandbox.check_layout(worktree=wt, home=home_p, agent_home=agent_home, state_root=state_root)
    fresh = not session.exists()
    if session.meta_path.exists() and not session.upper.is_dir():
        say(
            f"warning: session {name!r} lost its upper dir; it starts empty "
            f"(agent/{name} keeps its last capture)"
        )
    sessions.create(wt, session)
    agent_home.mkdir(parents=True, exist_ok=True, mode=0o700)
    _seed_gitconfig(agent_home, wt)
    empty = _empty_file(state_root)
    opts = sandbox.Options(
        worktree=wt,
        session=session,
        home=home_p,
        agent_home=agent_home,
        state_root=state_root,
        command=cmd,
        home_mounts=home_mounts,
        protect=protect,
        hide=hide_paths,
        allow_sockets=sockets,
        env=env,
        net=net_mode,
        empty_file=empty,
    )
    for w in warnings:
        say(f"warning: {w}")

    with sessions.Lock(session):
        plan = sandbox.build_plan(opts)
        hooks, notes = hardening.hooks(net=net_mode, allow_ports=ports)
        for n in notes:
            _warn_once(state_root, n)
        for rel in stale_paths(session, wt)[:20]:
            say(
                f"warning: {rel} changed in your worktree since the last run; "
                "the agent still sees its own older copy (apply or reject it to refresh)"
            )
        # started once bwrap runs: the snapshot's git add -A must not slow the agent's start
        snap = _Background(wt, session, hide=hide_paths)
        try:
            start = time.time()
            try:
                outcome = launch.run(
                    plan,
                    bwrap=bw.path,
                    hooks=hooks,
                    probe_cache=probes,
                    started=None if no_capture else snap.start,
                )
            except BaseException:  # e.g. the network could not be set up: the agent never ran
                if fresh:
                    _forget(session, wt, snap)
                raise
            end = time.time()
            if not outcome.started:
                import shutil

                from git_agent.commands import doctor

                if fresh:  # nothing half-created: a session that never ran is not kept
                    _forget(session, wt, snap)
                why = doctor.diagnose(bw.path)
                if why is None and shutil.which(cmd[0], path=env.get("PATH")) is None:
                    raise CommandNotFound(f"{cmd[0]}: command not found (inside the sandbox)")
                raise SandboxUnavailable(why or (
                    "the sandbox did not start (bwrap's message is above); run `git agent doctor`"))
            session.update_meta(
                last_run={
                    "command": cmd,
                    "start": start,
                    "end": end,
                    "exit_status": outcome.exit_status,
                    "net": net_mode,
                }
            )
            if not no_capture:
                _capture(
                    session=session,
                    worktree=wt,
                    snap=snap,
                    command=cmd,
                    exit_status=outcome.exit_status,
                )
            else:
                say(f"changes kept in the session (not captured): {session.upper}")
            return outcome.exit_status
        finally:
            snap.stop()  # a no-op once capture joined it; else ended before we are


def _capture(
    *,
    session: sessions.Session,
    worktree: repo.Worktree,
    snap: _Background,
    command: list[str],
    exit_status: int,
) -> None:
    if not sessions.has_changes(session=session, worktree=worktree):
        # the base snapshot is not needed: run's `finally` stops it (kills its git, joins it)
        say(f"session {session.name!r}: nothing changed")
        return
    from git_agent.capture import commit as capture

    snap.join()
    if snap.error is not None:
        if isinstance(snap.error, GitAgentError):
            raise snap.error
        raise GitAgentError(f"could not record the base snapshot: {snap.error}") from snap.error
    result = capture.capture(
        worktree=worktree,
        session=session,
        base=snap.result,
        command=command,
        exit_status=exit_status,
    )
    for w in result.warnings:
        say(f"warning: {w}")
    say(result.summary)


def _warn_once(state_root: Path, note: str) -> None:
    """A default protection this machine lacks: said once per kernel, then `doctor` tells."""
    import hashlib

    key = hashlib.sha256(f"{os.uname().release}\0{note}".encode()).hexdigest()[:16]
    marker = state_root / f"warned-{key}"
    if marker.exists():
        return
    say(f"warning: {note} (said once; `git agent doctor` explains)")
    with contextlib.suppress(OSError):
        marker.touch()


def _forget(session: sessions.Session, wt: repo.Worktree, snap: _Background) -> None:
    """Undo a session that never started: its base ref and its folder."""
    if snap.is_alive() or snap.ident is not None:
        snap.join()
    if snap.result is not None:
        proc.git("update-ref", "-d", session.base_ref, snap.result.oid, cwd=wt.root, check=False)
    sessions.remove(session)


def _ports(values: list[str]) -> list[int]:
    out: list[int] = []
    for v in values:
        try:
            p = int(v)
        except ValueError:
            raise UsageError(f"agent.allowPort: {v!r} is not a port number") from None
        if not 1 <= p <= 65535:
            raise UsageError(f"agent.allowPort: {p} is not between 1 and 65535")
        if p not in out:
            out.append(p)
    return out


def _hide_paths(
    wt: repo.Worktree, from_config: list[str], from_flags: list[str], warnings: list[str]
) -> list[Path]:
    out: list[Path] = []
    for raw, base in [(v, wt.root) for v in from_config] + [(v, wt.cwd) for v in from_flags]:
        p = Path(os.path.normpath(base / os.path.expanduser(raw)))
        if not within(p, wt.root) or p == wt.root:
            raise UsageError(f"--hide {raw}: not a path inside the worktree {wt.root}")
        if ".git" in p.relative_to(wt.root).parts:
            raise UsageError(f"--hide {raw}: .git is not hidden this way")
        if not os.path.lexists(p):
            warnings.append(f"hide {raw}: does not exist, nothing to hide")
            continue
        out.append(p)
    return out


def _seed_gitconfig(agent_home: Path, wt: repo.Worktree) -> None:
    """A new agent home gets the user's git identity, so the agent's own commits have one."""
    path = agent_home / ".gitconfig"
    if os.path.islink(path) or (os.path.lexists(path) and path.stat().st_size > 0):
        return  # the user's own (an empty one was made by an older protect step: seed it)
    lines = []
    for key in ("name", "email"):
        value = proc.git("config", f"user.{key}", cwd=wt.root, check=False).decode().strip()
        if value and "\n" not in value:
            lines.append(f"\t{key} = {json.dumps(value, ensure_ascii=False)}\n")
    text = "# made by git agent from your git identity; read-only inside the sandbox\n"
    path.write_text(text + ("[user]\n" + "".join(lines) if lines else ""))


def _empty_file(state_root: Path) -> Path:
    state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    p = state_root / "empty"
    if not p.exists() or p.stat().st_size:
        tmp = state_root / f".empty.{os.getpid()}"
        tmp.write_bytes(b"")
        tmp.chmod(0o444)
        os.replace(tmp, p)
    return p
