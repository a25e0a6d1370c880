"""ptrace inside the sandbox, through the real CLI, as root and as an unprivileged user
(docs/security.md, "The sandbox's init"): the agent cannot trace (and so stop) bwrap, the
sandbox's pid 1, and git agent with it; tracing its own children (gdb, strace) still works."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import Actor

PY = "/usr/bin/python3"

# pid 1 attached (ATTACH stops it) and seized then interrupted, each left as is: the agent exits
# while holding it, as an attacker would; then a child of the agent's traced and let go.
PROBE = r"""
import ctypes, errno, json, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 16, 17, 0x4206, 0x4207
def call(req, pid):
    r = libc.ptrace(req, pid, None, None)
    return "ok" if r == 0 else errno.errorcode[ctypes.get_errno()]
out = {"attach 1": call(PTRACE_ATTACH, 1), "seize 1": call(PTRACE_SEIZE, 1),
       "interrupt 1": call(PTRACE_INTERRUPT, 1),
       "attach 1 (high word)": call(PTRACE_ATTACH, 0x1_0000_0001)}
child = os.fork()
if child == 0:
    time.sleep(60)
    os._exit(0)
out["attach child"] = call(PTRACE_ATTACH, child)
_, status = os.waitpid(child, 0)
out["child stopped"] = os.WIFSTOPPED(status)
out["detach child"] = call(PTRACE_DETACH, child)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
# pid 1's memory, the way round ptrace (attack round 2): /proc/1/mem, process_vm_writev,
# and a copy of one of its fds (its status pipe)
for path in ("/proc/1/mem", "/proc/1/task/1/mem"):
    try:
        os.close(os.open(path, os.O_RDWR))
        out[path] = "ok"
    except OSError as e:
        out[path] = errno.errorcode[e.errno]
class IOV(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(2)
local = IOV(ctypes.cast(buf, ctypes.c_void_p), 2)
remote = IOV(0x400000, 2)
libc.syscall.restype = ctypes.c_long
nr = {"x86_64": 311, "aarch64": 271}[os.uname().machine]
r = libc.syscall(nr, 1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
out["process_vm_writev 1"] = "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
pidfd = os.pidfd_open(1)
r = libc.syscall(438, pidfd, 0, 0)
out["pidfd_getfd 1"] = "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
open("traced.txt", "w").write("done\n")
print(json.dumps(out), flush=True)
"""


def test_the_agent_cannot_stop_the_sandboxs_init(actor: Actor) -> None:
    repo = actor.make_repo()
    try:
        p = actor.agent("run", "-s", "ptrace", "--net", "none", "--", PY, "-c", PROBE, cwd=repo,
                        timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("git agent hung: the sandbox's pid 1 was left stopped by the agent")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["attach 1"] == "EPERM", out
    assert out["seize 1"] == "EPERM", out
    assert out["interrupt 1"] == "EPERM", out
    assert out["attach 1 (high word)"] != "ok", out  # pid is an int: the same pid 1
    for way in ("/proc/1/mem", "/proc/1/task/1/mem"):
        assert out[way] in ("EROFS", "EACCES"), out
    assert out["process_vm_writev 1"] == "EPERM" and out["pidfd_getfd 1"] == "EPERM", out
    # the agent's own tools still trace its children
    assert out["attach child"] == "ok" and out["child stopped"], out
    assert out["detach child"] == "ok", out
    # and the run was captured as usual
    assert actor.git("show", "agent/ptrace:traced.txt", cwd=repo) == "done\n"
