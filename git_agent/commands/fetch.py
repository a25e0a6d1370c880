"""`git agent fetch [SESSION | --all]`: bring back agent/S of sessions that ran on a remote,
imported with every check of remote/bundle.py, under the session's lock."""

from __future__ import annotations

from git_agent import repo, ui
from git_agent import session as sessions
from git_agent.errors import GitAgentError, UsageError
from git_agent.remote import client, engine, remotes
from git_agent.settings import gitconfig


def main(name: str | None, *, all_: bool = False) -> int:
    wt = repo.find_worktree()
    cfg = gitconfig.read(wt.root)
    if all_:
        if name:
            raise UsageError("give a SESSION or --all, not both")
        chosen = [s for s in sessions.list_sessions(wt) if s.read_meta().remote]
        if not chosen:
            ui.say("no session of this worktree ran on a remote")
            return 0
    else:
        s = sessions.get(wt, name or sessions.default_name(wt))
        if not s.exists():
            raise UsageError(f"no session {s.name!r}")
        chosen = [s]
    failed = 0
    for s in chosen:
        meta = s.read_meta()
        if not meta.remote or not meta.repo_id:
            raise UsageError(f"session {s.name!r} did not run on a remote (nothing to fetch)")
        target = remotes.lookup(cfg, meta.remote)
        state: dict[str, object] = {}
        try:
            with sessions.Lock(s, "fetch"):  # a killed run is captured there first
                eng = engine.connect(target, cfg, repo_id=meta.repo_id, session=s.name)
                try:
                    eng.open(shared=False)
                    tip = client.fetch(eng, wt, s, repo_id=meta.repo_id, capture=True,
                                       state=state)
                finally:
                    eng.close()
                s.update_meta(remote_running=True if state.get("running") else None)
        except GitAgentError as e:
            if not all_:
                raise
            ui.say(f"git agent: {s.name}: {e}")
            failed = 1
            continue
        if state.get("running"):
            ui.say(f"session {s.name!r} still runs on {meta.remote}: `git agent attach "
                   f"{s.name}` joins it; fetch again once it ends")
            continue
        ui.say(f"session {s.name!r}: {s.branch_name} fetched from {meta.remote} ({tip[:12]})"
               if tip else f"session {s.name!r}: nothing new from {meta.remote}")
        if tip:  # assessed here, never taken from the remote (mergeback/assessed.py)
            from git_agent.mergeback.view import assess_ahead

            assess_ahead(wt, s)
    return failed
