"""HOME at the caller's own path (sandbox/homealias.py), as a plan: a link to the real home and
HOME set to it only where no mount of the sandbox is at, above or below that path."""

from __future__ import annotations

from pathlib import Path

from git_agent.sandbox import homealias
from git_agent.sandbox.mounts import Bind, MountPlan, Overlay, Symlink, Tmpfs

HOME = Path("/home/remote")
PLAN = MountPlan(mounts=[Bind(Path("/usr"), Path("/usr")), Symlink("usr/bin", Path("/bin")),
                         Tmpfs(Path("/tmp")),
                         Overlay((Path("/x/aihome"),), Path("/u"), Path("/w"), HOME),
                         Overlay((Path("/srv/wt"),), Path("/u2"), Path("/w2"), Path("/srv/wt"))],
                 env={"HOME": str(HOME)})


def test_a_free_path_becomes_home() -> None:
    plan, used = homealias.apply(PLAN, home=HOME, alias=Path("/Users/me"))
    assert used and plan.env["HOME"] == "/Users/me"
    assert plan.mounts[-1] == Symlink(str(HOME), Path("/Users/me"))
    assert PLAN.env["HOME"] == str(HOME) and len(PLAN.mounts) == 5  # the given plan unchanged
    assert "--symlink" in plan.options() and "/Users/me" in plan.options()


def test_a_path_the_sandbox_uses_is_not_taken() -> None:
    for alias in ("/tmp/me", "/usr/local/me", "/bin/me", "/srv/wt", "/srv/wt/inner", "/srv",
                  "/", "/home/remote", "/home", "/home/remote/sub", "relative/me",
                  "/home/../etc/me"):
        plan, used = homealias.apply(PLAN, home=HOME, alias=Path(alias))
        assert not used and plan is PLAN, alias
    assert homealias.apply(PLAN, home=HOME, alias=None) == (PLAN, False)
