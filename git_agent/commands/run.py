"""`git agent run`: resolve the settings, lock the session, launch the sandbox, capture its work."""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import time
from pathlib import Path

from git_agent import proc, repo, ui
from git_agent import session as sessions
from git_agent.capture.background import BaseSnapshot, has_changes, stale_paths
from git_agent.errors import GitAgentError, SandboxUnavailable, UsageError
from git_agent.sandbox import agenthome, bwrap, hardening, launch, network, system, welcome
from git_agent.sandbox import build as sandbox
from git_agent.sandbox.mounts import MountPlan
from git_agent.session import identity
from git_agent.settings import effective, gitconfig
from git_agent.settings.resolve import RunFlags, RunSettings, resolve
from git_agent.ui import say

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from typing import Any


class CommandNotFound(GitAgentError):
    exit_code = 127  # as a shell says it


def real_home() -> Path:
    home = os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    p = Path(home)
    if not p.is_absolute() or p == Path("/"):
        raise UsageError(
            f"HOME={home!r} cannot hold an agent home; set HOME to your home directory"
        )
    return p


def main(*, no_capture: bool = False, on: str | None = None, detach: bool = False,
         attempts: int | None = None, base: Any = None, home_alias: Path | None = None,
         **options: Any) -> int:
    """`git agent run`: options are RunFlags' fields, as the command line gives them; base: an
    attempt's snapshot (forked by --attempts); home_alias (a remote run: the caller's own $HOME
    path, from the worker as GIT_AGENT_HOME_ALIAS) is HOME inside when it can be."""
    alias = os.environ.pop("GIT_AGENT_HOME_ALIAS", None)  # never passed on to the agent
    if home_alias is None and alias and os.path.isabs(alias):
        home_alias = Path(alias)
    if detach and on is None:
        raise UsageError("--detach is for a run on a remote (--on NAME)")
    flags = RunFlags(**options)
    if attempts is not None:  # S.1..S.N of one base snapshot, run at once: each is this again
        from git_agent.capture import snapshot
        from git_agent.session import attempts as fan

        wt, cfg = _find_worktree_and_config()
        s = resolve(flags=flags, cfg=cfg, worktree=wt, home=real_home(),
                    default_session=sessions.default_name(wt), environ=os.environ)
        return fan.run_all(wt, fan.names(s.session_name, attempts),
                           take_base=lambda: snapshot.snapshot(worktree=wt, hide=s.hide),
                           run_one=lambda name, base: main(no_capture=no_capture, on=on, base=base,
                                                           **{**options, "session_name": name}))
    if base is not None:  # an attempt, forked: its sandbox ends with the process that forked it
        from git_agent.sandbox import lifetime

        lifetime.adopt(os.getppid())
    if on is not None:
        return _run_on(on, flags=flags, no_capture=no_capture, detach=detach, given=base)
    if os.geteuid() == 0:
        system.start_root_etc_scan()  # in parallel with what follows
    wt, cfg = _find_worktree_and_config()
    for line in effective.unknown_warnings(cfg):  # a typo in agent.hide must not pass quietly
        say(line)
    state_root = sessions.state_root()
    probes = state_root / "probes.json"  # bwrap's version, env's abilities
    bw = bwrap.find(cfg.get_str("agent.bwrap"), cache=probes)
    home_p = real_home()
    settings = resolve(flags=flags, cfg=cfg, worktree=wt, home=home_p,
                       default_session=sessions.default_name(wt), environ=os.environ)
    home_mounts, mount_warnings = sandbox.parse_home_mounts(
        settings.mount_specs, home=home_p, explicit=settings.explicit_mounts)
    env = sandbox.environment(home=home_p, session=settings.session_name,
                              pass_env=settings.pass_env, set_env=settings.set_env)
    check_command(settings, wt=wt, home=home_p, home_mounts=home_mounts, env=env)
    check_owner(wt)
    keep = agenthome.declared(keep=settings.preset.keep, keep_json=settings.preset.keep_json,
                              home_keep=cfg.get_all("agent.homeKeep"))
    network.check(settings.egress)
    opts, fresh = _prepare(wt, settings, home=home_p, state_root=state_root,
                           home_mounts=home_mounts, env=env)
    for w in [*mount_warnings, *settings.warnings]:
        say(f"warning: {w}")
    session = opts.session
    with sessions.Lock(session):
        hidden = [os.path.relpath(h, wt.root) for h in settings.hide]
        plan = welcome.prepare(sandbox.build_plan(opts), session_dir=session.dir,
                               session=session.name, net=settings.net, ports=settings.ports,
                               hidden=hidden)
        plan, aliased = sandbox.alias_home(plan, home=home_p, alias=home_alias)
        if home_alias not in (None, home_p) and not aliased:
            say(f"note: HOME inside is {home_p} here ({home_alias} is taken or not usable)")
        if _stderr_is_tty():  # one line that says where the agent runs, and how to leave
            say(welcome.banner(session=session.name, net=settings.net, ports=settings.ports,
                               hidden=hidden))
        hooks, notes = hardening.hooks(net=settings.net)
        for n in notes:
            _warn_once(state_root, n)
        _warn_stale(session, wt)
        if os.geteuid() == 0 and _stderr_is_tty():  # on a terminal, as the banner (#15)
            say("warning: the agent runs as root (uid 0) inside the sandbox; "
                "run git agent as your own user where you can")
        # started once bwrap runs: the snapshot's git add -A must not slow the agent's start
        snap = BaseSnapshot(wt, session, hide=settings.hide, given=base)
        # signals that come once the agent has exited (git's wrapper forwards the SIGTERM of
        # `timeout` a second time) wait until the capture is done; launch hands the ones that
        # come while the agent runs to the agent
        try:
            with ui.uninterrupted() as held:
                with network.running(settings.egress, session.dir) as sockets:
                    outcome, start, end = _launch(
                        network.with_network(plan, settings.egress, sockets), bw=bw.path,
                        hooks=hooks, probes=probes, snap=snap, fresh=fresh, opts=opts)
                for line in network.review_lines(session.dir, since=start):
                    say(line)
                for w in agenthome.carry_back(session=session, agent_home=opts.agent_home,
                                              keep=keep, lock=state_root / "home-keep.lock"):
                    say(f"warning: {w}")
                session.update_meta(last_run=sessions.RunRecord(
                    command=opts.command, start=start, end=end,
                    exit_status=outcome.exit_status, net=settings.net), remote=None,
                    remote_running=None)
                if no_capture:  # the base is recorded all the same: `capture` can follow
                    snap.join()
                    say(f"changes kept in the session (not captured): `git agent capture "
                        f"{session.name}` brings them to {session.branch_name}")
                else:
                    _capture(session=session, worktree=wt, snap=snap, command=opts.command,
                             exit_status=outcome.exit_status)
            ui.act_on(held)
            return outcome.exit_status
        finally:
            snap.stop()  # a no-op once capture joined it; else ended before we are


def _run_on(name: str, *, flags: RunFlags, no_capture: bool, detach: bool,
            given: Any = None) -> int:
    from git_agent.remote import run_on

    if flags.mounts or flags.home or flags.allow_sockets:
        raise UsageError("--mount, --home and --allow-socket name paths of this machine: not "
                         "with --on (the remote has its own agent home)")
    wt, cfg = _find_worktree_and_config()
    return run_on.run_on(name, wt=wt, cfg=cfg, home=real_home(), flags=flags,
                         no_capture=no_capture, detach=detach, given=given)


def _find_worktree_and_config() -> tuple[repo.Worktree, gitconfig.GitConfig]:
    """The worktree and its git config, read side by side: neither needs the other."""
    reading = gitconfig.start_read()
    try:
        wt = repo.find_worktree()
    except BaseException:
        reading()  # reaped (it is quick); the error is find_worktree's
        raise
    return wt, gitconfig.read(started=reading)


def check_owner(wt: repo.Worktree) -> None:
    """An unprivileged sandbox maps only the caller's own uid: a worktree of another user's
    would be read-only inside and its copy-ups would fail."""
    owner = wt.root.stat().st_uid
    if os.geteuid() != 0 and owner != os.geteuid():
        raise SandboxUnavailable(
            f"{wt.root} is owned by uid {owner}; the sandbox can only map your "
            "own uid: run git agent as that user, or chown the worktree"
        )


def check_command(s: RunSettings, *, wt: repo.Worktree, home: Path,
                  home_mounts: list[sandbox.HomeMount], env: dict[str, str]) -> None:
    """The agent's command is found as the sandbox will find it (its PATH, its mounts), before
    a session or a ref is made: a typo or a missing agent creates nothing."""
    from git_agent.sandbox import inside
    from git_agent.settings import presets

    v = inside.view(home=home, agent_home=s.agent_home, home_mounts=[m.path for m in home_mounts],
                    worktree=wt.root)
    word = s.command[0] if s.command else ""
    known = presets.builtin(os.path.basename(word))
    why = inside.missing_command(
        v, s.command, path=env.get("PATH", ""), cwd=wt.cwd,
        install=known.install if known else "",
        known=[n for p in presets.PRESETS.values() for n in (p.name, *p.aliases)],
        host_path=os.environ.get("PATH"))
    if why:
        raise CommandNotFound(why)


def _prepare(
    wt: repo.Worktree, s: RunSettings, *, home: Path, state_root: Path,
    home_mounts: list[sandbox.HomeMount], env: dict[str, str],
) -> tuple[sandbox.Options, bool]:
    """Make what the run needs on disk (session dirs, agent home) and the sandbox's options.
    Returns them and whether the session is new (undone if the agent never starts)."""
    sandbox.check_layout(worktree=wt, home=home, agent_home=s.agent_home, state_root=state_root)
    session = sessions.get(wt, s.session_name)
    fresh = not session.exists()
    known_id = identity.current(wt)  # read once: the stale check and the record use it
    if identity.is_stale(wt, session, known_id):  # of a repository that was here before
        raise identity.StaleSession(identity.stale_message(session))
    if session.meta_path.exists() and not session.upper.is_dir():
        say(
            f"warning: session {s.session_name!r} lost its upper dir; it starts empty "
            f"(agent/{s.session_name} keeps its last capture)"
        )
    repo_id = known_id or identity.ensure(wt)
    sessions.create(wt, session, repo_id=repo_id)
    if session.read_meta().repo_id is None:  # made before ids were recorded, and found ours
        session.update_meta(repo_id=repo_id)
    s.agent_home.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.lstat(s.agent_home)  # resolved before: a link here now was put in our way
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise SandboxUnavailable(f"the agent home {s.agent_home} changed under git agent (it "
                                 "is now a link, or another user's); not started")
    welcome.seed_agent_home(s.agent_home, worktree_root=wt.root)
    opts = sandbox.Options(
        worktree=wt,
        session=session,
        home=home,
        agent_home=s.agent_home,
        state_root=state_root,
        command=s.command,
        home_mounts=home_mounts,
        protect=s.protect,
        hide=s.hide,
        allow_sockets=s.sockets,
        env=env,
        net=s.net,
        empty_file=_empty_file(state_root),
    )
    return opts, fresh


def _warn_stale(session: sessions.Session, wt: repo.Worktree) -> None:
    for rel in stale_paths(session, wt)[:20]:
        say(
            f"warning: {rel} changed in your worktree since the last run; "
            "the agent still sees its own older copy (apply or reject it to refresh)"
        )


def _launch(
    plan: MountPlan, *, bw: Path, hooks: launch.Hooks, probes: Path, snap: BaseSnapshot,
    fresh: bool, opts: sandbox.Options,
) -> tuple[launch.Outcome, float, float]:
    """Run the agent; a sandbox that never started undoes a new session and says why."""
    session, wt = opts.session, opts.worktree
    start = time.time()
    try:
        outcome = launch.run(plan, bwrap=bw, hooks=hooks, probe_cache=probes,
                             started=snap.start)
    except BaseException:  # e.g. the network could not be set up: the agent never ran
        if fresh:
            _forget(session, wt, snap)
        raise
    end = time.time()
    if not outcome.started:
        import shutil

        from git_agent.sandbox.probes import diagnose

        if fresh:  # nothing half-created: a session that never ran is not kept
            _forget(session, wt, snap)
        why = diagnose(bw)
        cmd = opts.command
        if why is None and shutil.which(cmd[0], path=opts.env.get("PATH")) is None:
            raise CommandNotFound(f"{cmd[0]}: command not found (inside the sandbox)")
        raise SandboxUnavailable(why or (
            "the sandbox did not start (bwrap's message is above); run `git agent doctor`"))
    return outcome, start, end


def _capture(
    *,
    session: sessions.Session,
    worktree: repo.Worktree,
    snap: BaseSnapshot,
    command: list[str],
    exit_status: int,
) -> None:
    if not has_changes(session=session, worktree=worktree):
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


def _stderr_is_tty() -> bool:
    return os.isatty(2)  # False for a closed or bad fd, never an error


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


def _forget(session: sessions.Session, wt: repo.Worktree, snap: BaseSnapshot) -> None:
    """Undo a session that never started: its base ref and its folder."""
    if snap.is_alive() or snap.ident is not None:
        snap.join()
    if snap.result is not None:
        proc.git("update-ref", "-d", session.base_ref, snap.result.oid, cwd=wt.root, check=False)
    sessions.remove(session)


def _empty_file(state_root: Path) -> Path:
    state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    p = state_root / "empty"
    if not p.exists() or p.stat().st_size:
        tmp = state_root / f".empty.{os.getpid()}"
        tmp.write_bytes(b"")
        tmp.chmod(0o444)
        os.replace(tmp, p)
    return p
