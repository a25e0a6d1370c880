"""`git agent doctor` tries overlayfs where sessions keep their upper dirs: the session store."""

from __future__ import annotations

from tests.conftest import Actor


def test_doctor_tries_overlayfs_in_the_session_store(actor: Actor) -> None:
    repo = actor.make_repo()
    state = actor.base / "state"
    p = actor.agent("doctor", cwd=repo, env={"XDG_STATE_HOME": str(state)})
    line = next(x for x in p.stdout.splitlines() if "overlayfs" in x)
    assert line.startswith("ok") and f"upper dir in {state}/git-agent" in line, p.stdout
    assert [x.name for x in (state / "git-agent").iterdir()] == []  # its probe dir is gone
    # a store that cannot hold a directory: doctor says so (the temp dir would have worked)
    blocked = actor.base / "blocked"
    blocked.write_text("a file where the store would be\n")
    actor.own(blocked)
    p = actor.agent("doctor", cwd=repo, env={"XDG_STATE_HOME": str(blocked)})
    line = next(x for x in p.stdout.splitlines() if "overlayfs" in x)
    assert line.startswith("FAIL") and f"session store {blocked}/git-agent" in line, p.stdout
    assert p.returncode != 0
