"""A real sshd on loopback: a random port on 127.0.0.1, throwaway host and user keys under a
private tmp dir, a created remote user whose `git-agent` is this checkout on a venv of
/usr/bin/python3. Root only (sshd switches users). The tests' fixture (tests/remote/conftest.py)
and the benchmark's remote rows (tests/bench/bench.py) both start it through `running()`."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import git_agent

SSHD = "/usr/sbin/sshd"
REMOTE_USER = os.environ.get("GIT_AGENT_REMOTE_USER", "git-agent-remote")
# where the tests' own git_agent comes from: the checkout (editable install) or the venv's wheel
SOURCE = Path(git_agent.__file__).resolve().parents[1]


def _remote_user() -> pwd.struct_passwd:
    try:
        pw = pwd.getpwnam(REMOTE_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", REMOTE_USER],
                       check=True, capture_output=True)
        pw = pwd.getpwnam(REMOTE_USER)
    # "!" (locked) would refuse even key logins without PAM; "*": no password, keys work
    subprocess.run(["usermod", "-p", "*", REMOTE_USER], check=True, capture_output=True)
    return pw


def _install_git_agent(pw: pwd.struct_passwd) -> Path:
    """~/.local/bin/git-agent of the remote user: the git_agent under test (this checkout, or
    the wheel the test venv installed from it), run by a venv of /usr/bin/python3 whose
    dependencies are the test venv's (no network in tests)."""
    home = Path(pw.pw_dir)
    venv = home / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin/python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "git_agent_checkout.pth").write_text(
        f"{SOURCE}\n{sysconfig.get_paths()['purelib']}\n")
    bindir = home / ".local/bin"
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / "git-agent"
    exe.write_text(f"#!{venv}/bin/python\nimport sys\nfrom git_agent.__main__ import main\n"
                   "sys.exit(main())\n")
    exe.chmod(0o755)
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(venv), str(home / ".local")],
                   check=True)
    return bindir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sshd:
    """The running sshd: where it listens, its host key, and who may log in."""

    def __init__(self, dir: Path, port: int, host_pub: str, authorized: Path, user: str):
        self.dir = dir
        self.port = port
        self.host_pub = host_pub
        self.authorized = authorized
        self.user = user

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def client(self, base: Path, own: Callable[[Path], object] = lambda _p: None, *,
               host_pub: str | None = None) -> Path:
        """An ssh config (for agent.sshConfig) in base/ssh with a fresh key, allowed in; the
        host key pinned (host_pub: pin another one instead); own(dir) gives it to its user."""
        d = base / "ssh"
        d.mkdir(exist_ok=True)
        key = d / "id"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True)
            with self.authorized.open("a") as f:
                f.write((d / "id.pub").read_text())
        known = d / "known_hosts"
        known.write_text(f"[127.0.0.1]:{self.port} {host_pub or self.host_pub}\n")
        conf = d / "config"
        conf.write_text(
            "Host *\n"
            f"  IdentityFile {key}\n  IdentitiesOnly yes\n  IdentityAgent none\n"
            f"  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n"
            "  LogLevel ERROR\n")
        own(d)
        return conf


class Unavailable(Exception):
    """sshd cannot be started here (not root, not installed): the caller skips."""


@contextlib.contextmanager
def running() -> Iterator[Sshd]:
    """sshd on 127.0.0.1 at a free port for REMOTE_USER, stopped and removed on exit."""
    if os.geteuid() != 0:
        raise Unavailable("the sshd harness runs as root (sshd switches to the remote user)")
    if not os.path.exists(SSHD):
        raise Unavailable("sshd is not installed (apt-get install openssh-server)")
    pw = _remote_user()
    bindir = _install_git_agent(pw)
    d = Path(tempfile.mkdtemp(prefix="git-agent-sshd-"))
    os.chmod(d, 0o755)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")],
                   check=True)
    authorized = d / "authorized_keys"
    authorized.write_text("")
    authorized.chmod(0o644)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'pid'}\n"
        f"AuthorizedKeysFile {authorized}\nAllowUsers {REMOTE_USER}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin no\nX11Forwarding no\n"
        f"SetEnv PATH={bindir}:/usr/local/bin:/usr/bin:/bin\n"
        "LogLevel VERBOSE\n")
    log = (d / "log").open("wb")
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"sshd exited: {(d / 'log').read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port}")
            time.sleep(0.05)
        yield Sshd(d, port, (d / "host.pub").read_text().strip(), authorized, REMOTE_USER)
    finally:
        server.terminate()
        server.wait(10)
        log.close()
        shutil.rmtree(d, ignore_errors=True)

