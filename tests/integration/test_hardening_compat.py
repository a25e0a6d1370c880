"""bwrap and ordinary tools still work under the seccomp filter and Landlock scoping."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ESCAPE_USER, INNER_PYTHON, PYTHON, REPO, as_user, sandbox_as, user_exists

from git_agent.sandbox import landlock

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(landlock.abi_version() < landlock.SCOPE_MIN_ABI,
                       reason="needs Landlock ABI >= 6 (Linux 6.12)"),
]


@pytest.fixture
def scratch(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A directory the user owns, reachable by it (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="ga-compat-"))
    os.chmod(d, 0o755)
    for sub in ("lower", "upper", "work"):
        (d / sub).mkdir()
    (d / "lower" / "kept.txt").write_text("lower\n")
    user = request.getfixturevalue("user") if "user" in request.fixturenames else ESCAPE_USER
    if os.geteuid() == 0 and user_exists(user):  # run unprivileged, it is the user's already
        shutil.chown(d, user, user)
        for p in d.rglob("*"):
            shutil.chown(p, user, user)
    yield d
    shutil.rmtree(d, ignore_errors=True)


WORKLOAD = r"""
import json, os, subprocess
def run(*argv):
    p = subprocess.run(argv, capture_output=True, text=True, cwd="/tmp/repo")
    return p.returncode
env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
           GIT_COMMITTER_EMAIL="t@t", HOME="/tmp")
os.environ.update(env)
res = {
    "read lower": open("/tmp/repo/kept.txt").read(),
    "ls": run("ls", "-la", "/tmp/repo", "/usr/bin"),
    "git": run("sh", "-c", "git init -q . && git add -A && git commit -qm x && git log --oneline"),
    "python": run(os.environ.get("PY", "python3"), "-c", "import ssl, sqlite3, json"),
    "userns": run("unshare", "--user", "true"),  # --disable-userns
    "ro": run("touch", "/usr/bin/x"),
}
open("/tmp/repo/new.txt", "w").write("upper\n")
print(json.dumps(res))
"""

OVERLAY = ["--overlay-src", "{d}/lower", "--overlay", "{d}/upper", "{d}/work", "/tmp/repo",
           "--chdir", "/tmp/repo", "--setenv", "PY", INNER_PYTHON]


def test_bwrap_setup_works_under_scoping_and_seccomp(user: str, scratch: Path) -> None:
    extra = [a.format(d=scratch) for a in OVERLAY]
    p = sandbox_as(user, WORKLOAD, landlock=True, seccomp=True, extra=extra)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res == {"read lower": "lower\n", "ls": 0, "git": 0, "python": 0, "userns": 1, "ro": 1}
    assert (scratch / "upper" / "new.txt").read_text() == "upper\n"
    assert not (scratch / "lower" / "new.txt").exists()
    assert (scratch / "upper" / ".git").is_dir()


JOB_CONTROL = r"""
import fcntl, json, os, pty, struct, termios, time
pid, master = pty.fork()
if pid == 0:
    res = {}
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 42, 100, 0, 0))
    res["winsz"] = list(struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)))[:2]
    job = os.fork()  # what a shell does for `cmd &; fg`: own process group, then foreground
    if job == 0:
        os.setpgid(0, 0)
        time.sleep(2)
        os._exit(0)
    os.setpgid(job, job)
    os.tcsetpgrp(0, job)  # TIOCSPGRP
    res["fg"] = os.tcgetpgrp(0) == job  # TIOCGPGRP
    os.kill(job, 9)
    os.waitpid(job, 0)
    res["tcgetattr"] = len(termios.tcgetattr(0))
    os.write(1, (json.dumps(res) + "\n").encode())
    os._exit(0)
out = b""
while not out.endswith(b"\n"):
    try:
        out += os.read(master, 1000)
    except OSError:
        break
os.waitpid(pid, 0)
print(out.decode().strip().splitlines()[-1])
"""


def test_terminal_job_control_still_works(user: str) -> None:
    p = sandbox_as(user, JOB_CONTROL, landlock=True, seccomp=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {
        "winsz": [42, 100], "fg": True, "tcgetattr": 7,
    }


def test_die_with_parent_still_works_under_scoping(user: str) -> None:
    """The kernel's parent-death signal to bwrap is not a signal Landlock scopes away."""
    marker = f"ga-compat-{os.getpid()}-{time.monotonic_ns()}"
    spec = {"inner": [INNER_PYTHON, "-c", "import time; time.sleep(60)", marker],
            "landlock": True}
    env = {"PYTHONPATH": f"{REPO}:{REPO / 'tests'}", "PATH": os.environ["PATH"]}
    harness = subprocess.Popen(as_user(user, [PYTHON, "-m", "helpers", json.dumps(spec)]),
                               env=env, cwd="/")

    def sandboxed() -> list[int]:
        pattern = f"time.sleep.60. {marker}"
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        return [int(x) for x in out.stdout.split()]

    def inner_runs() -> bool:
        # bwrap itself matches as soon as it execs, before it armed its parent-death signal:
        # wait for the inner command (bwrap set all up before it exec'd that)
        for pid in sandboxed():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() != "bwrap":
                    return True
            except OSError:
                pass
        return False

    deadline = time.monotonic() + 30
    while not inner_runs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert inner_runs(), "the sandbox did not start"
    harness.send_signal(signal.SIGKILL)  # setpriv exec'd the harness: same pid
    harness.wait()
    deadline = time.monotonic() + 30  # well before the inner sleep ends by itself
    while sandboxed() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sandboxed()
