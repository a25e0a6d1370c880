"""After `apply -p` took some hunks of a file and left others: the session's base moves to a
commit on top of it that holds, at that file, what was taken, so that base..agent/S shows
just the hunks left while the agent keeps its whole file (less what was discarded).

Why: the upper dir is what the agent sees and what each run diffs against the worktree it
starts from; the file there is the base with the hunks taken and the hunks kept, and the
base here holds the base with the hunks taken. Review then shows only what is left, now and
after the next run alike. The new base is a base snapshot on the same HEAD as the old one
(so capture imports the agent's own commits as after any run); the old one stays in the
ref's reflog."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping

from git_agent import proc
from git_agent.errors import GitAgentError
from git_agent.mergeback.view import View

EARLIER = "Agent-Earlier-Base"  # the trailer of a base after apply -p: the base it replaced


def advance(view: View, taken: Mapping[bytes, tuple[int, str]]) -> str:
    """The new base (its ref moved, compare-and-swap against view.base): view.base's tree with
    each path of taken set to (git mode, blob oid). Returns view.base when taken is empty."""
    if not taken:
        return view.base
    root = view.worktree.root
    with tempfile.TemporaryDirectory(prefix="git-agent-base-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        proc.git("read-tree", view.base, cwd=root, env=env)
        lines = b"".join(b"%o %s\t%s\0" % (mode, oid.encode(), path)
                         for path, (mode, oid) in sorted(taken.items()))
        proc.git("update-index", "-z", "--index-info", cwd=root, env=env, input=lines)
        tree = proc.git("write-tree", cwd=root, env=env).decode().strip()
    names = ", ".join(os.fsdecode(p) for p in sorted(taken)[:3])
    more = f" and {len(taken) - 3} more" if len(taken) > 3 else ""
    # a base snapshot as run makes them (capture finds the HEAD it stands on by that)
    msg = (f"git agent: base snapshot of {view.session.name} after apply -p\n\nThe hunks "
           f"applied of {names}{more} count as the base: the session holds the rest.\n\n"
           f"{EARLIER}: {view.base}\n")
    parents = _anchor_parents(view)
    date = proc.git("show", "-s", "--format=%cd", "--date=raw", view.base, cwd=root)
    env = {"GIT_AUTHOR_DATE": date.decode().strip(), "GIT_COMMITTER_DATE": date.decode().strip(),
           "GIT_AUTHOR_NAME": "git agent", "GIT_AUTHOR_EMAIL": "git-agent@localhost",
           "GIT_COMMITTER_NAME": "git agent", "GIT_COMMITTER_EMAIL": "git-agent@localhost"}
    oid = proc.git("commit-tree", tree, *parents, cwd=root, input=msg.encode(),
                   env=env).decode().strip()
    try:
        proc.git("update-ref", "-m", f"git agent: base of {view.session.name} after apply -p",
                 view.session.base_ref, oid, view.base, cwd=root)
    except proc.CalledProcessError as e:
        raise GitAgentError(f"{view.session.base_ref} changed meanwhile ({e})") from e
    return oid


def known(view: View) -> list[str]:
    """view.base and the bases it replaced (each apply -p's new base names the one before in
    its trailer): the agent's branch may stand on any of them, and no commit that one of them
    reaches is the agent's work (its old base snapshot least of all)."""
    root = view.worktree.root
    out = [view.base]
    while len(out) < 100:
        got = proc.git("log", "-1", f"--format=%s%n%(trailers:key={EARLIER},valueonly)",
                       out[-1], cwd=root, check=False).decode().split("\n")
        if len(got) < 2 or not got[0].endswith(" after apply -p") or not got[0].startswith(
                "git agent: base snapshot of "):
            break
        oid = got[1].strip()
        if (not oid or oid in out or proc.git("rev-parse", "-q", "--verify", f"{oid}^{{commit}}",
                                              cwd=root, check=False).strip() != oid.encode()):
            break
        out.append(oid)
    return out


def _anchor_parents(view: View) -> list[str]:
    """The new base goes where the old one stands: on the HEAD it was made on (a snapshot's
    parents), or on the old base itself when that is HEAD."""
    root = view.worktree.root
    message = proc.git("log", "-1", "--format=%B", view.base, cwd=root)
    if not message.startswith(b"git agent: base snapshot"):
        return ["-p", view.base]
    out = proc.git("rev-parse", f"{view.base}^@", cwd=root).decode().split()
    return [arg for parent in out for arg in ("-p", parent)]
