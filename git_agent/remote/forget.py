"""The worker's op drop: the remote's copy of a session removed (`git agent drop` of a session
that ran there): the session's state kept by the remote's `git agent run` (its upper dir and
meta), its worktree, and its refs in the store. Refused while the session runs there."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import quote

from git_agent import repo, session
from git_agent.capture import rewrite
from git_agent.errors import SessionBusy
from git_agent.remote import host


def drop(req: dict[str, object]) -> dict[str, object]:
    """Op drop: what was removed there ({"removed": [...]}, empty when there was nothing of
    it), or {"busy": what} when the session is running (or applying...) there."""
    repo_id = host._field(req, "repo_id", host._OID)
    name = host._session(req)
    store = host.store_of(repo_id)
    if not (store / "HEAD").exists():
        return {"ok": True, "removed": []}
    removed: list[str] = []
    with host.repo_lock(repo_id) as store:
        record = store / "git-agent-sessions" / quote(name, safe="")
        wt = Path(record.read_text()) if record.exists() else None
        if wt is not None and host._is_ours(wt, store):
            s = session.get(repo.find_worktree(wt), name)
            if s.dir.exists():
                try:
                    with session.Lock(s, "drop"):
                        session.remove(s)
                except SessionBusy as e:  # said as an answer: the one reason drop stops
                    return {"ok": False, "busy": e.doing or "busy"}
                removed.append("its state")
            host._git(store, "worktree", "remove", "--force", str(wt))
            removed.append(f"its worktree {wt}")
        with contextlib.suppress(OSError):
            record.unlink()
        for ref in (f"refs/heads/agent/{name}", f"refs/agent-base/{name}",
                    rewrite.history_ref(name)):
            if host._git(store, "rev-parse", "-q", "--verify", ref, check=False):
                host._git(store, "update-ref", "-d", ref)
                if "its branch" not in removed and ref.startswith("refs/heads/"):
                    removed.append("its branch")
        host._git(store, "worktree", "prune")
    return {"ok": True, "removed": removed}
