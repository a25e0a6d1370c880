"""A session's round trip through bundles, as root and as an unprivileged user: the base goes out
as a thin bundle (untracked work included), the remote's agent/S comes back checked, and review
and apply then work on it exactly as on a local session."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.conftest import Actor

_SCRIPT = """
import sys
from pathlib import Path
from git_agent import session
from git_agent.errors import GitAgentError
from git_agent.remote import bundle
from git_agent.repo import find_worktree
wt = find_worktree(Path.cwd())
s = session.get(wt, sys.argv[2])
try:
    if sys.argv[1] == "out":
        print(bundle.make_base_bundle(wt, s, Path(sys.argv[3]), sys.argv[4:]))
    else:
        print(bundle.import_session(wt, s, Path(sys.argv[3])))
except GitAgentError as e:
    sys.exit(f"git agent: {e}")
"""


def bundles(actor: Actor, cwd: Path, *args: str) -> str:
    p = actor.run([sys.executable, "-c", _SCRIPT, *args], cwd=cwd)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    return p.stdout.strip()


def test_round_trip_through_bundles(actor: Actor) -> None:
    local = actor.make_repo("local")
    (local / "untracked.txt").write_text("mine, not committed\n")
    actor.own(local)
    assert actor.agent("run", "-s", "s", "--", "sh", "-c", "echo x > here.txt",
                       cwd=local).returncode == 0
    base = actor.git("rev-parse", "refs/agent-base/s", cwd=local).strip()

    # In: the whole base the first time (the remote has nothing), as a bundle git can read
    out = actor.base / "in.bundle"
    assert bundles(actor, local, "out", "s", str(out)) == "True"
    remote = actor.base / "remote"
    remote.mkdir()
    actor.own(remote)
    actor.git("init", "-q", cwd=remote)
    actor.git("fetch", "-q", str(out), "refs/agent-base/s:refs/agent-base/s", cwd=remote)
    assert actor.git("rev-parse", "refs/agent-base/s", cwd=remote).strip() == base
    assert actor.git("show", f"{base}:untracked.txt", cwd=remote) == "mine, not committed\n"
    # the remote has the base already: nothing to send
    assert bundles(actor, local, "out", "s", str(actor.base / "none.bundle"), base) == "False"
    assert not (actor.base / "none.bundle").exists()

    # the agent's work there, as a commit on the base
    actor.git("checkout", "-q", "--detach", base, cwd=remote)
    (remote / "from_remote.txt").write_text("made on the remote\n")
    actor.own(remote)
    actor.git("add", "from_remote.txt", cwd=remote)
    actor.git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "remote work",
              "-m", f"Agent-Session: s\nAgent-Base: {base}",
              cwd=remote)
    actor.git("branch", "agent/s", cwd=remote)
    back = actor.base / "back.bundle"
    actor.git("bundle", "create", "-q", str(back), "agent/s", "--not", base, cwd=remote)
    tip = actor.git("rev-parse", "agent/s", cwd=remote).strip()

    # Back: imported, then reviewed and applied like a local session
    assert bundles(actor, local, "in", "s", str(back)) == tip
    assert actor.git("rev-parse", "agent/s", cwd=local).strip() == tip
    review = actor.agent("review", "s", "--json", cwd=local)
    assert review.returncode == 0, review.stderr
    assert [f["path"] for f in json.loads(review.stdout)["files"]] == ["from_remote.txt"]
    applied = actor.agent("apply", "s", "--yes", cwd=local)
    assert applied.returncode == 0, applied.stderr
    assert (local / "from_remote.txt").read_text() == "made on the remote\n"
    assert (local / "untracked.txt").read_text() == "mine, not committed\n"


def test_the_incremental_base_bundle_is_small(actor: Actor) -> None:
    """docs/remote.md: the next run's base costs nothing when nothing changed, and only the
    change when one file did (the remote has the previous base)."""
    local = actor.make_repo("local", {f"f{i}.txt": os.urandom(2000).hex() for i in range(50)})
    (local / "untracked.bin").write_bytes(os.urandom(100_000))
    actor.own(local)

    def run(n: int) -> str:
        assert actor.agent("run", "-s", "s", "--", "sh", "-c", f"echo {n} > a.txt",
                           cwd=local).returncode == 0
        return actor.git("rev-parse", "refs/agent-base/s", cwd=local).strip()

    def send(name: str, *have: str) -> int:
        out = actor.base / name
        sent = bundles(actor, local, "out", "s", str(out), *have)
        return out.stat().st_size if sent == "True" else 0

    first = run(1)
    full = send("full.bundle")
    same = run(2)
    unchanged = send("same.bundle", first)
    (local / "f7.txt").write_text("the user's edit\n")
    changed = run(3)
    one_file = send("one.bundle", same)
    print(f"base bundle: full {full} bytes; nothing changed {unchanged} bytes "
          f"(same base: {same == first}); one file changed {one_file} bytes")
    assert full > 200_000  # the measure sees a real base
    assert unchanged <= 1024
    assert changed != same and 0 < one_file <= 1024
