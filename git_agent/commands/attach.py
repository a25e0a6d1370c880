"""`git agent attach [SESSION]`: your terminal joined to a session that runs on a remote
(`run --on --detach`, or a run whose connection broke); ^] leaves it again. When the agent has
ended (now or before), its branch is brought back as `fetch` does (docs/remote.md)."""

from __future__ import annotations

import os

from git_agent import repo, ui
from git_agent import session as sessions
from git_agent.errors import UsageError
from git_agent.remote import client, engine, follow, remotes
from git_agent.settings import gitconfig


def main(name: str | None) -> int:
    wt = repo.find_worktree()
    cfg = gitconfig.read(wt.root)
    s = sessions.get(wt, name or sessions.default_name(wt))
    if not s.exists():
        raise UsageError(f"no session {s.name!r}")
    meta = s.read_meta()
    if not meta.remote or not meta.repo_id:
        raise UsageError(f"session {s.name!r} did not run on a remote (nothing to attach to)")
    target = remotes.lookup(cfg, meta.remote)
    if not engine.lasting(target):
        raise UsageError(f"session {s.name!r} ran on {meta.remote} (podman://): its run ended "
                         f"with its container, nothing to attach to (`git agent fetch {s.name}`)")
    eng = engine.connect(target, cfg, repo_id=meta.repo_id, session=s.name)
    try:  # one login for the attach op, the run's channel, fetch
        eng.open(shared=True)
        eng.ready()
        return _attach(eng, wt, s, meta.remote, meta.repo_id)
    finally:
        eng.close()


def _attach(eng: engine.Engine, wt: repo.Worktree, s: sessions.Session, name: str,
            repo_id: str) -> int:
    c = client.Conversation(eng, {"op": "attach", "repo_id": repo_id, "session": s.name})
    answer = c.line()
    c.close()
    ticket = answer.get("ticket")
    if answer.get("running") and isinstance(ticket, str):
        ui.say(f"attached to session {s.name!r} on {name} (^] leaves it running)")
        channel = client.run(eng, ticket, tty=os.isatty(0) and os.isatty(1))
    elif answer.get("known") is False:
        ui.say(f"session {s.name!r} has no run on {name} to attach to")
        channel = 0
    else:
        status, sig = answer.get("status"), answer.get("signal")  # ints (remote/answers.py)
        ui.say(f"session {s.name!r} has finished on {name}"
               + (f" (killed by signal {sig})" if sig else
                  f" (exit status {status})" if isinstance(status, int) else ""))
        channel = 0
    with sessions.Lock(s, "fetch"):
        return follow.conclude(eng, wt, s, name=name, repo_id=repo_id, channel=channel,
                               capture=True)
