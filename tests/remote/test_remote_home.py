"""HOME at the same path on the remote (issue #17), through the loopback sshd, as root and as an
unprivileged user: the agent home is shown at your own $HOME path inside the remote sandbox (a
link to where it is mounted there) when nothing of the sandbox is at, above or below that path;
else HOME is the remote's own, said in one line."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from tests.conftest import Actor
from tests.remote.conftest import Sshd
from tests.remote.test_over_ssh import setup

PROBE = 'echo "$HOME" > h.txt; cat "$HOME/probe.txt" > p.txt; (cd && pwd -P) > real.txt'


def _probe_in_remote_agent_home(sshd: Sshd) -> tuple[Path, Path]:
    pw = pwd.getpwnam(sshd.user)
    ah = Path(pw.pw_dir) / "aihome"  # the remote's agent.home default
    ah.mkdir(exist_ok=True, mode=0o700)
    probe = ah / "probe.txt"
    probe.write_text("from the remote's agent home\n")
    for p in (ah, probe):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    return Path(pw.pw_dir), probe


def test_the_agent_sees_home_at_your_own_path(actor: Actor, sshd: Sshd) -> None:
    repo = setup(actor, sshd)
    remote_home, probe = _probe_in_remote_agent_home(sshd)
    mine = Path("/srv") / f"ga-home-{os.urandom(4).hex()}" / "me"  # free on the remote's side
    mine.mkdir(parents=True)
    shutil.copy(actor.home / ".gitconfig", mine / ".gitconfig")
    actor.own(mine.parent)
    try:
        p = actor.agent("run", "--on", "box", "-s", "s", "--", "sh", "-c", PROBE, cwd=repo,
                        env={"HOME": str(mine)})
    finally:
        shutil.rmtree(mine.parent)
        probe.unlink()
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "HOME inside" not in p.stderr
    assert actor.git("show", "agent/s:h.txt", cwd=repo) == f"{mine}\n"
    assert actor.git("show", "agent/s:p.txt", cwd=repo) == "from the remote's agent home\n"
    assert actor.git("show", "agent/s:real.txt", cwd=repo) == f"{remote_home}\n"


def test_home_stays_the_remotes_when_your_path_is_taken_there(actor: Actor, sshd: Sshd) -> None:
    """Your $HOME under /tmp (a private tmpfs inside the sandbox): it cannot be shown there."""
    repo = setup(actor, sshd)
    assert Path("/tmp") in actor.home.parents, actor.home  # what this test relies on
    remote_home, probe = _probe_in_remote_agent_home(sshd)
    try:
        p = actor.agent("run", "--on", "box", "-s", "s", "--", "sh", "-c", PROBE, cwd=repo)
    finally:
        probe.unlink()
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    note = [ln for ln in p.stderr.splitlines() if "HOME inside" in ln]
    assert note == [f"git agent: note: HOME inside is {remote_home} here ({actor.home} is taken "
                    "or not usable)"], p.stderr
    assert actor.git("show", "agent/s:h.txt", cwd=repo) == f"{remote_home}\n"
    assert actor.git("show", "agent/s:p.txt", cwd=repo) == "from the remote's agent home\n"
