"""`git agent drop`: remove a session (its overlay, metadata, base ref and branch)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from git_agent import proc, session, ui
from git_agent.capture import rewrite
from git_agent.errors import GitAgentError, SessionBusy
from git_agent.mergeback import store_walk
from git_agent.mergeback.view import files_changed, refuse_elsewhere
from git_agent.repo import Worktree, find_worktree
from git_agent.session import identity


@contextlib.contextmanager
def _locked(s: session.Session) -> Iterator[None]:
    """Hold the session's lock while removing it, so no run starts meanwhile."""
    if not s.dir.is_dir():
        yield
        return
    with session.Lock(s, "drop"):
        yield


def main(*, session_name: str, force: bool) -> int:
    worktree = find_worktree()
    s = session.get(worktree, session_name)
    # a stale session (made for another repository that was at this path) goes with its
    # folder only: the refs of that name here are this repository's
    stale = identity.is_stale(worktree, s)
    base, head = (None, None) if stale else (worktree.resolve(s.base_ref),
                                             worktree.resolve(s.branch))
    record = None if stale else worktree.resolve(rewrite.history_ref(s.name))
    if not s.dir.exists() and base is None and head is None and record is None:
        raise GitAgentError(f"no session {s.name!r} in this worktree")
    if not stale:
        refuse_elsewhere(worktree, s)  # another worktree's live session: never its refs
    doing = s.holder()
    if doing == "run":
        raise SessionBusy(f"session {s.name!r} is running; end it first, then drop it")
    if doing is not None:  # said before asking; the lock below is the real guard
        raise SessionBusy(session.busy_message(s, doing), doing=doing)
    if not stale and worktree.head_ref() == s.branch:
        raise GitAgentError(f"{s.branch_name} is checked out here; "
                            "switch to another branch first")
    if not force:
        if not sys.stdin.isatty():
            raise GitAgentError(f"not dropping session {s.name!r} without a terminal to ask "
                                "on; pass --force")
        n = files_changed(worktree, base, head)
        what = f"{n} changed file{'s' if n != 1 else ''}" if n is not None else "its overlay"
        # the branch named only when it exists (a first run not captured yet has none)
        branch = f"branch {s.branch_name}" if head is not None else "no branch yet"
        answer = ui.ask(f"drop session {s.name!r} ({what}; {branch})? [y/N] ")
        if answer.lower() not in ("y", "yes"):
            ui.echo("not dropped")
            return 1
    with _locked(s):
        left = None if stale else _drop_remote(worktree, s, force=force)
        store_walk.remove_tree(s.dir)  # however deep the agent made its overlay
        session.remove(s)
        for ref, old in ((s.branch, head), (s.base_ref, base),
                         (rewrite.history_ref(s.name), record)):
            if old is not None:
                proc.git("update-ref", "-m", f"git agent: drop {s.name}", "-d", ref, old,
                         cwd=worktree.root)
    ui.say(f"dropped {'stale ' if stale else ''}session {s.name!r}")
    if left:
        ui.say(left)
    return 0


def _drop_remote(worktree: Worktree, s: session.Session, *, force: bool) -> str | None:
    """A session that ran on a remote: its copy there removed too (worktree, state, refs).
    Refused only when the remote says the session runs there (busy), unless force: then the
    local drop goes on as for a remote not reached (or one that cannot drop): what is left
    there is said in one line, returned."""
    from git_agent.remote import client, engine, remotes
    from git_agent.settings import gitconfig

    meta = s.read_meta() if s.dir.is_dir() else None
    if meta is None or not meta.remote or not meta.repo_id:
        return None
    try:
        cfg = gitconfig.read(worktree.root)
        eng = engine.connect(remotes.lookup(cfg, meta.remote), cfg, repo_id=meta.repo_id,
                             session=s.name)
        if eng.discard():  # Podman: the session's volume (and any container) removed
            return None
        try:
            eng.open(shared=False)
            answer = client.call(eng, {"op": "drop", "repo_id": meta.repo_id,
                                       "session": s.name})
        finally:
            eng.close()
    except GitAgentError as e:
        return (f"note: {remotes.printable(str(e))}: the copy of session {s.name!r} on "
                f"{meta.remote} (its worktree and state there) is left")
    busy = answer.get("busy")
    if busy:  # a str, printable (remote/answers.py)
        if force:
            return (f"note: session {s.name!r} is busy on {meta.remote} ({str(busy)[:20]}): "
                    f"its copy there (its worktree and state) is left")
        raise SessionBusy(f"session {s.name!r} is busy on {meta.remote} ({str(busy)[:20]}); "
                          "end it there first, then drop it (--force drops it here anyway)",
                          doing=str(busy)[:20])
    return None
