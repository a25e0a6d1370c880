"""Promise: the environment is an allow-list (docs/security.md, "The environment"), for a secret
in git agent's OWN environment: no file under /proc inside (environ and cmdline of every pid)
and no file the agent can read in /tmp, its home or the worktree holds it. Through the real
CLI (git's wrapper, then git-agent, then bwrap), as root and as an unprivileged user."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import Actor

pytestmark = pytest.mark.sandbox

# The scanner gets what it looks for hex-encoded (its own cmdline must not hold the secrets),
# reads every file it can (O_NONBLOCK, 4 MiB each, 2 s per file), and reports where each
# needle was found. /proc/*/mem and the like are skipped: they are the scanner's own memory.
SCAN = r"""
import json, os, signal, sys
needles = {name: bytes.fromhex(h) for name, h in json.loads(sys.argv[1]).items()}
SKIP = {"mem", "pagemap", "kcore", "kmsg", "kpagecount", "kpageflags", "kpagecgroup",
        "clear_refs", "sysrq-trigger"}
found = {name: [] for name in needles}
read = 0
class Slow(Exception):
    pass
def alarm(*_):
    raise Slow
signal.signal(signal.SIGALRM, alarm)
def scan(path):
    global read
    try:
        signal.alarm(2)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        try:
            data = os.read(fd, 4 << 20)
        finally:
            os.close(fd)
    except (OSError, Slow):
        return
    finally:
        signal.alarm(0)
    read += 1
    for name, n in needles.items():
        if n in data:
            found[name].append(path)
def walk(top, proc=False):
    for dirpath, dirnames, filenames in os.walk(top):
        if proc:
            dirnames[:] = [d for d in dirnames if d not in ("sys", "bus", "irq", "fs")]
        for f in filenames:
            if f not in SKIP:
                scan(os.path.join(dirpath, f))
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for f in ("environ", "cmdline"):
            scan(f"/proc/{pid}/{f}")
        fds = f"/proc/{pid}/fd"
        for fd in (os.listdir(fds) if os.access(fds, os.R_OK) else []):
            target = os.path.join(fds, fd)
            try:
                if os.path.isfile(target):  # a memfd or a file bwrap kept open
                    scan(target)
            except OSError:
                pass
walk("/proc", proc=True)
for top in ("/tmp", os.environ["HOME"], os.getcwd()):
    walk(top)
print(json.dumps({"found": found, "read": read}))
"""


def test_the_environment_is_an_allow_list_even_in_proc(actor: Actor) -> None:
    repo = actor.make_repo()
    secrets = {"GIT_AGENT_TEST_SECRET": f"sekrit-{uuid.uuid4().hex}",
               "AWS_SECRET_ACCESS_KEY": f"aws-{uuid.uuid4().hex}"}
    allowed = f"visible-{uuid.uuid4().hex}"  # passed on purpose: proves the scan reads environ
    needles = {**secrets, "ALLOWED": allowed}
    p = actor.agent("run", "-s", "env", "--pass-env", "GIT_AGENT_TEST_ALLOWED", "--",
                    "/usr/bin/python3", "-c", SCAN,
                    json.dumps({k: v.encode().hex() for k, v in needles.items()}),
                    cwd=repo, env={**secrets, "GIT_AGENT_TEST_ALLOWED": allowed})
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    found = res["found"]
    assert res["read"] > 100
    assert "/proc/self/environ" in found["ALLOWED"] or any(
        path.endswith("/environ") for path in found["ALLOWED"]), found
    assert found["GIT_AGENT_TEST_SECRET"] == [] and found["AWS_SECRET_ACCESS_KEY"] == [], found
