"""`git agent attach [SESSION]`: your terminal joined to a session that runs on a remote
(`run --on --detach`, or a run whose connection broke); ^] leaves it again. When the agent has
ended (now or before), its branch is brought back as `fetch` does (docs/remote.md)."""

from __future__ import annotations

import os

from git_agent import repo, ui
from git_agent import session as sessions
from git_agent.errors import UsageError
from git_agent.remote import client, follow, remotes
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
    mux = client.Master(target, cfg)  # one login for the attach op, the run's channel, fetch
    try:
        mux.wait()
        return _attach(target, cfg, wt, s, meta.remote, meta.repo_id, mux.path)
    finally:
        mux.close()


def _attach(target: remotes.Target, cfg: gitconfig.GitConfig, wt: repo.Worktree,
            s: sessions.Session, name: str, repo_id: str, control: str) -> int:
    c = client.Conversation(target, cfg, {"op": "attach", "repo_id": repo_id,
                                          "session": s.name}, control)
    answer = c.line()
    c.close()
    ticket = answer.get("ticket")
    if answer.get("running") and isinstance(ticket, str):
        ui.say(f"attached to session {s.name!r} on {name} (^] leaves it running)")
        channel = client.run(target, cfg, ticket, tty=os.isatty(0) and os.isatty(1),
                             control=control)
    elif answer.get("known") is False:
        ui.say(f"session {s.name!r} has no run on {name} to attach to")
        channel = 0
    else:
        status, sig = answer.get("status"), answer.get("signal")
        ui.say(f"session {s.name!r} has finished on {name}"
               + (f" (killed by signal {sig})" if sig else
                  f" (exit status {status})" if isinstance(status, int) else ""))
        channel = 0
    with sessions.Lock(s, "fetch"):
        return follow.conclude(target, cfg, wt, s, name=name, repo_id=repo_id,
                               channel=channel, control=control, capture=True)
