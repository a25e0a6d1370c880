"""`run --on NAME`, the local side (docs/remote.md): the base taken here and sent as a thin
bundle; the agent run there by the worker in the same sandbox (`git agent run` on the remote,
under a holder that outlives the connection; it refuses when its doctor fails); agent/S brought
back with every check of remote/bundle.py, or one line saying how to attach / fetch when the
run goes on there."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from git_agent import proc
from git_agent import session as sessions
from git_agent.capture import snapshot
from git_agent.errors import GitAgentError, UsageError
from git_agent.remote import client, engine, follow, remotes
from git_agent.repo import Worktree
from git_agent.session import identity
from git_agent.settings import gitconfig
from git_agent.settings.resolve import RunFlags, resolve
from git_agent.ui import say


def run_on(name: str, *, wt: Worktree, cfg: gitconfig.GitConfig, home: Path, flags: RunFlags,
           no_capture: bool, detach: bool, given: Any = None) -> int:
    """given: the base snapshot an --attempts run took once for all its sessions."""
    target = remotes.lookup(cfg, name)
    if detach and not engine.lasting(target):
        raise UsageError(f"--detach: not on {name} (podman://): a run's container ends with "
                         "`run --on` (docs/remote.md, \"Podman\")")
    with contextlib.ExitStack() as stack:
        eng: engine.Engine | None = None
        if engine.early(target):  # ssh: its handshake while the rest is made ready
            eng = engine.connect(target, cfg)
            stack.callback(eng.close)
            eng.open(shared=True)
        settings = resolve(flags=flags, cfg=cfg, worktree=wt, home=home,
                           default_session=sessions.default_name(wt), environ=os.environ)
        session = sessions.get(wt, settings.session_name)
        known_id = identity.current(wt)
        if identity.is_stale(wt, session, known_id):
            raise identity.StaleSession(identity.stale_message(session))
        repo_id = known_id or identity.ensure(wt)
        fresh = not session.exists()
        sessions.create(wt, session, repo_id=repo_id)
        # API keys and the like: values in the request (never argv, never the bundle)
        env = {n: os.environ[n] for n in settings.pass_env if n in os.environ}
        forwarded: dict[str, object] = {
            "preset": flags.preset, "net": flags.net, "allow_hosts": list(flags.allow_hosts),
            "allow_ports": list(flags.allow_ports), "hide": list(flags.hide),
            "pass_env": sorted(env), "no_capture": no_capture}
        tty = os.isatty(0) and os.isatty(1)
        with sessions.Lock(session):
            if eng is None:  # Podman: the session's container made while the snapshot is taken
                eng = engine.connect(target, cfg, repo_id=repo_id, session=session.name)
                stack.callback(eng.close)
                eng.open(shared=True)
            old = snapshot.read(worktree=wt, session=session)
            base = given or snapshot.snapshot(worktree=wt, scratch=session.dir,
                                                   hide=settings.hide)
            snapshot.keep(worktree=wt, session=session, base=base)
            try:
                eng.ready()
                answer = client.prepare(eng, wt, session, repo_id=repo_id,
                                        base=base.oid,
                                        request={"cwd": os.path.relpath(wt.cwd, wt.root),
                                                 "command": list(settings.command),
                                                 "flags": forwarded, "env": env,
                                                 "detach": detach, "tty": tty,
                                                 "home": str(home)})
            except BaseException:  # the agent never ran: a new session is not kept, an old
                if fresh:          # one's base is what it was
                    proc.git("update-ref", "-d", session.base_ref, base.oid, cwd=wt.root,
                             check=False)
                    sessions.remove(session)
                elif old is not None and old != base.oid:
                    snapshot.keep(worktree=wt, session=session, base=snapshot.Base(
                        oid=old, head=None, clean=False), old=base.oid)
                raise
            ticket, where = answer.get("ticket"), answer.get("path")
            if not isinstance(where, str) or not (isinstance(ticket, str) or
                                                   detach and answer.get("detached") is True):
                raise GitAgentError(f"the worker on {eng.name} gave a malformed answer")
            if where != str(wt.root):
                say(f"note: on {name} the session's worktree is {remotes.printable(where)} "
                    f"({wt.root} is taken or not writable there)")
            start = time.time()
            if detach:
                session.update_meta(remote=name, remote_running=True,
                                    last_run=sessions.RunRecord(
                                        command=list(settings.command), start=start, end=None,
                                        exit_status=None, net=settings.net))
                say(f"session {session.name!r} runs on {name}, detached: `git agent attach "
                    f"{session.name}` joins it (^] leaves it again), `git agent fetch "
                    f"{session.name}` brings {session.branch_name} once it ends")
                return 0
            session.update_meta(remote=name, remote_running=None)
            assert isinstance(ticket, str)
            # fetch's worker starts while the agent runs (its own channel, asked after the run)
            early = client.Conversation(eng, None) if eng.warm() else None
            if early is not None:
                stack.callback(early.close)
            channel = client.run(eng, ticket, tty=tty)
            status = follow.conclude(eng, wt, session, name=name, repo_id=repo_id,
                                     channel=channel,
                                     started=early if channel != follow.LOST else None)
            ended = not session.read_meta().remote_running  # else it goes on there
            session.update_meta(last_run=sessions.RunRecord(
                command=list(settings.command), start=start,
                end=time.time() if ended else None, exit_status=status if ended else None,
                net=settings.net))
    return status
