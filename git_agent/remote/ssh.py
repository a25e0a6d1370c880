"""The ssh engine: the worker started as `ssh HOST git-agent worker` (no forwarding, no local
shell, nothing of the request in argv), run --on's connections sharing one login (Master)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from git_agent.errors import GitAgentError
from git_agent.remote.remotes import Target, printable
from git_agent.settings import gitconfig


def ssh_argv(target: Target, cfg: gitconfig.GitConfig, *, tty: bool = False,
             ticket: str | None = None, control: str | None = None,
             master: bool = False) -> list[str]:
    """ssh to the worker: no agent or port forwarding, no local shell; the command there is
    fixed (the request goes on stdin, never in argv), or the prepared run's ticket (random hex
    the worker made: no user data), with a pty when tty."""
    if target.engine != "ssh":
        raise GitAgentError(f"{target.engine}:// is not an ssh remote")
    if ticket is not None and not re.match(r"^[0-9a-f]{32}$", ticket):
        raise GitAgentError("the worker answered a malformed ticket")
    argv = ["ssh", "-t" if tty else "-T", "-o", "ForwardAgent=no", "-o", "ClearAllForwardings=yes",
            "-o", "ForwardX11=no", "-o", "PermitLocalCommand=no"]
    conf = cfg.get_str("agent.sshConfig")
    if conf:
        argv += ["-F", str(Path(conf).expanduser())]
    if target.port is not None:
        argv += ["-p", str(target.port)]
    if target.user:
        argv += ["-l", target.user]
    if control is not None:  # one connection shared (Master): ssh's own channels
        argv += ["-o", f"ControlPath={control}", "-o", "ControlPersist=no",
                 "-o", "ControlMaster=" + ("yes" if master else "no")]
    if master:  # no command, no prompt: a master that cannot log in alone is not used
        return [*argv, "-N", "-o", "BatchMode=yes", "--", target.host.strip("[]")]
    tail = ["--ticket", ticket] if ticket is not None else []
    return [*argv, "--", target.host.strip("[]"), "git-agent", "worker", *tail]


class Master:
    """One ssh connection that run --on's three share (ssh's ControlMaster, its socket in a
    private temporary dir): one handshake instead of three. Ours to end; a master that is not
    up in time (or cannot log in without a prompt) is not waited for: each connection then
    makes its own, as ssh does when the control socket is missing."""

    def __init__(self, target: Target, cfg: gitconfig.GitConfig):
        self.host = target.host.strip("[]")
        self.dir = tempfile.mkdtemp(prefix="ga-ssh-")  # short: a socket path has 108 bytes
        self.path = os.path.join(self.dir, "c")
        self.p = subprocess.Popen(ssh_argv(target, cfg, control=self.path, master=True),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)

    def wait(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (not os.path.exists(self.path) and self.p.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.005)

    def up(self) -> bool:
        """Is the shared login there (its socket made, the master alive)?"""
        return self.p.poll() is None and os.path.exists(self.path)

    def close(self) -> None:
        """`ssh -O exit` (a SIGTERM can leave the master waiting on a channel a client just
        closed); a master that still lives after that is killed: every session it carried
        has ended."""
        if self.p.poll() is None and os.path.exists(self.path):
            subprocess.run(["ssh", "-o", f"ControlPath={self.path}", "-O", "exit", "--",
                            self.host],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        for stop in (self.p.terminate, self.p.kill):
            try:
                self.p.wait(2)
                break
            except subprocess.TimeoutExpired:
                stop()
        self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Ssh:
    """The ssh engine (remote/engine.py's interface)."""

    lasting = True  # a run goes on under its holder there when the connection ends

    def __init__(self, target: Target, cfg: gitconfig.GitConfig):
        self.target = target
        self.cfg = cfg
        self.name = target.host
        self.master: Master | None = None

    def warm(self) -> bool:
        """Another connection now costs no login: the shared one is up."""
        return self.master is not None and self.master.up()

    def hang_up(self) -> None:
        """Never needed: a run goes on under its holder (lasting)."""

    def discard(self) -> bool:
        return False  # the remote's copy is the worker's to remove (op drop)

    def open(self, *, shared: bool) -> None:
        if shared:  # its handshake runs while the caller takes the snapshot
            self.master = Master(self.target, self.cfg)

    def ready(self) -> None:
        if self.master is not None:
            self.master.wait()

    def close(self) -> None:
        if self.master is not None:
            self.master.close()
            self.master = None

    def worker(self, *, tty: bool = False, ticket: str | None = None) -> list[str]:
        return ssh_argv(self.target, self.cfg, tty=tty, ticket=ticket,
                        control=self.master.path if self.master is not None else None)

    def explain(self, status: int, stderr: str) -> str | None:
        last = printable(stderr.strip().splitlines()[-1]) if stderr.strip() else ""
        if status == 255:
            return f"cannot reach {self.name} over ssh: {last or 'ssh failed'}"
        if status == 127 or "git-agent: command not found" in stderr:
            return (f"no git agent on {self.name}: `git-agent` is not on the remote user's PATH "
                    "(install it there with install.sh)")
        return None
