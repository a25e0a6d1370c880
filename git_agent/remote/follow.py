"""The local side after a remote run's channel ends (`run --on`, `attach`): the agent exited,
you detached, or the connection broke. The fetch conversation says which (the worker reads its
run's state); a run that goes on there leaves the session's meta saying so and one line saying
how to `attach` / `fetch`; an ended one brings agent/S back (docs/remote.md, "Detached runs and
network loss")."""

from __future__ import annotations

import time

from git_agent import ui
from git_agent.errors import GitAgentError
from git_agent.remote import client
from git_agent.remote.engine import Engine
from git_agent.repo import Worktree
from git_agent.session import Session

HANG_UP = 60  # seconds a hung-up run has to capture and end (an engine not lasting)
LOST = 255  # what ssh says when the connection broke; run --on's status when the run goes on


def goes_on(name: str, session: Session, why: str) -> str:
    return (f"{why}; the agent goes on on {name}: `git agent attach {session.name}` "
            f"reconnects, `git agent fetch {session.name}` brings {session.branch_name} once it "
            "ends")


def _hang_up(engine: Engine, wt: Worktree, session: Session, *, repo_id: str,
             state: dict[str, object]) -> str | None:
    """SIGHUP to the run, then fetch until it has ended (HANG_UP seconds at most)."""
    engine.hang_up()
    deadline = time.monotonic() + HANG_UP
    tip = None
    while state.get("running") and time.monotonic() < deadline:
        time.sleep(0.2)
        state.clear()
        tip = client.fetch(engine, wt, session, repo_id=repo_id, capture=True,
                           state=state) or tip
    return tip


def stopped(name: str, session: Session) -> str:
    return (f"the agent on {name} did not end when hung up and is killed with its container; "
            f"what it left stays in the session there (the next `run --on {name} -s "
            f"{session.name}` goes on from it)")


def conclude(engine: Engine, wt: Worktree, session: Session, *, name: str, repo_id: str,
             channel: int, capture: bool = False,
             started: client.Conversation | None = None) -> int:
    """channel: the exit status of the run's ssh channel. Returns the agent's exit status
    (LOST while it goes on there or, on an engine not lasting, was stopped; 0 when you
    detached); started: fetch's worker, opened while the agent ran and not yet asked. The
    caller holds the session's lock."""
    state: dict[str, object] = {}
    try:
        tip = client.fetch(engine, wt, session, repo_id=repo_id, capture=capture, state=state,
                           started=started)
    except GitAgentError as e:
        if channel != LOST or not engine.lasting:
            raise
        session.update_meta(remote_running=True)
        ui.say(goes_on(name, session, f"the connection to {name} was lost ({e})"))
        return LOST
    if state.get("running") and not engine.lasting:  # its end: hung up, then captured there
        tip = _hang_up(engine, wt, session, repo_id=repo_id, state=state) or tip
        if state.get("running"):  # the caller's close() ends it
            session.update_meta(remote_running=None)
            ui.say(stopped(name, session))
            return LOST
        ui.say(f"the run's connection to {name} ended before the agent did: it was hung up "
               "(SIGHUP) and its changes captured there")
    if state.get("running"):
        session.update_meta(remote_running=True)
        if channel == 0:  # you pressed the detach key
            ui.say(goes_on(name, session, "detached"))
            return 0
        ui.say(goes_on(name, session, f"the connection to {name} was lost"))
        return LOST
    session.update_meta(remote_running=None)
    status = state.get("status")
    code = status if isinstance(status, int) and not isinstance(status, bool) else channel
    sig = state.get("signal")
    if (sig or state.get("lost")) and not capture:
        how = f"signal {sig}" if sig else "with the process that held it"
        ui.say(f"the run on {name} was killed ({how}) before it captured: `git agent "
               f"fetch {session.name}` captures what it left there and brings it back")
        if not sig:
            code = LOST
    ui.say(f"session {session.name!r}: {session.branch_name} fetched from {name} ({tip[:12]})"
           if tip else f"session {session.name!r}: nothing new from {name}")
    return code
