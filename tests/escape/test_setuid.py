"""Promise: nothing the agent writes, anywhere, carries set-uid or set-gid bits (docs/security.md,
"Set-uid files"). Through the real CLI, as root and as an unprivileged user."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import Actor

pytestmark = pytest.mark.sandbox

# Every way a shell, coreutils or a program sets the bits: chmod (numeric and u+s/g+s),
# install -m, cp -p of a set-uid file, open/mknod/mkdir with the bits in their mode. Each
# result is the exit status or the mode left; the legitimate chmod must still work.
ATTEMPTS = r"""
import json, os, stat, subprocess
def sh(cmd):
    return subprocess.run(["sh", "-c", cmd], capture_output=True).returncode
def mode(p):
    try:
        return oct(stat.S_IMODE(os.lstat(p).st_mode))
    except OSError:
        return None
def py(f):
    try:
        f()
        return "done"
    except OSError as e:
        return e.strerror
home = os.environ["HOME"]
res = {
    "chmod 4755 ~/id": sh("cp /usr/bin/id ~/id && chmod 4755 ~/id"),
    "chmod u+s worktree file": sh("echo x > wt.sh && chmod u+s wt.sh"),
    "chmod g+s worktree dir": sh("mkdir -p d && chmod g+s d"),
    "install -m 4755": sh("install -m 4755 /usr/bin/id ~/id2"),
    "install -m 2755 in /tmp": sh("install -m 2755 /usr/bin/id /tmp/id3"),
    "chmod 755 still works": sh("chmod 755 wt.sh && test -x wt.sh"),
    "os.open O_CREAT 04755": py(lambda: os.close(os.open("pyfile", os.O_CREAT | os.O_WRONLY,
                                                          0o4755))),
    "os.mknod S_IFREG 06755": py(lambda: os.mknod(home + "/node", stat.S_IFREG | 0o6755)),
    "os.mkdir 02755": py(lambda: os.mkdir("gdir", 0o2755)),
}
for p in ("~/id", "wt.sh", "d", "~/id2", "/tmp/id3", "pyfile", "~/node", "gdir"):
    res["mode " + p] = mode(os.path.expanduser(p))
print(json.dumps(res))
"""


def _with_bits(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if os.lstat(p).st_mode & (stat.S_ISUID | stat.S_ISGID):
                out.append(str(p))
    return out


def test_nothing_the_agent_writes_carries_set_uid_or_set_gid_bits(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "-s", "suid", "--", "/usr/bin/python3", "-c", ATTEMPTS, cwd=repo)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["chmod 755 still works"] == 0  # the legitimate use
    for attempt in ("chmod 4755 ~/id", "chmod u+s worktree file", "chmod g+s worktree dir",
                    "install -m 4755", "install -m 2755 in /tmp"):
        assert res[attempt] != 0, (attempt, res)
    for attempt in ("os.open O_CREAT 04755", "os.mknod S_IFREG 06755", "os.mkdir 02755"):
        assert res[attempt] == "Operation not permitted", (attempt, res)
    for key, value in res.items():
        if key.startswith("mode ") and value is not None:
            assert int(value, 8) & 0o6000 == 0, (key, res)
    assert res["mode ~/id"] == "0o755"  # it was copied: only the bits were refused
    state = actor.home / ".local" / "state" / "git-agent"
    uppers = list(state.glob("*/sessions/suid/upper"))
    assert len(uppers) == 1 and (uppers[0] / "wt.sh").exists()
    assert _with_bits(actor.home / "aihome") == []
    assert _with_bits(uppers[0]) == []
