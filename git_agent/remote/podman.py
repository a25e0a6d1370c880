"""The Podman engine: a container per session run from the worker image
(contrib/podman/build-image), the worker started with `podman exec -i [-t]` in it, the
session's state on a named volume that outlives the container (docs/remote.md, "Podman")."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Iterator

from git_agent.errors import GitAgentError
from git_agent.remote.remotes import Target, printable
from git_agent.session.store import state_root
from git_agent.settings import gitconfig

IMAGE = "localhost/git-agent-worker:latest"
HOME = "/home/agent"  # the image's user (uid 1000 inside) and its home: the volume
_TICKET = re.compile(r"^[0-9a-f]{32}$")
# a podman image reference or network name: never read as an option
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
_NETWORK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

# Why each option of `podman run` is there:
RUN_OPTIONS = (
    # the container's root is an unprivileged range of the host's ids, its own (no other
    # container shares it): an agent that left bwrap and the container is still nobody here
    "--userns=auto",
    # bwrap mounts a fresh /proc in its namespaces; the kernel allows it only where no part of
    # /proc is covered (podman masks /proc/kcore, /proc/keys, ... by default)
    "--security-opt", "unmask=/proc/*",
    # nothing the image's files say raises privileges (set-uid bits); bwrap needs none
    "--security-opt", "no-new-privileges",
    # the image is built here (contrib/podman/build-image), never pulled from a registry
    "--pull=never",
)


def names(repo_id: str, session: str) -> tuple[str, str]:
    """The container and the volume of one session of one repository (podman's name rules:
    the session name hashed)."""
    key = hashlib.sha256(f"{repo_id}\0{session}".encode()).hexdigest()
    return f"git-agent-{key[:24]}", f"git-agent-{key[:24]}"


CREATE_WAIT = 180  # seconds for `podman run -d` to answer


@contextlib.contextmanager
def _one_at_a_time() -> Iterator[None]:
    """An flock every git agent of this user takes around making a container."""
    root = state_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(root / "podman.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Podman:
    """The Podman engine (remote/engine.py's interface): podman://CONNECTION is `podman
    --connection CONNECTION`, podman:// the local engine as podman's own defaults reach it."""

    lasting = False  # the container, and the run in it, end with run --on (docs/remote.md)

    def __init__(self, target: Target, cfg: gitconfig.GitConfig, *, repo_id: str | None,
                 session: str | None):
        self.base = ["podman"] + ([f"--connection={target.connection}"]
                                  if target.connection else [])
        self.name = (f"podman connection {target.connection}" if target.connection
                     else "the local podman")
        key = f"agent.remote.{target.name}."
        self.image = cfg.get_str(key + "image") or IMAGE
        self.network = cfg.get_str(key + "network")
        if not _IMAGE.match(self.image):
            raise GitAgentError(f"bad {key}image {self.image!r}: an image name")
        if self.network is not None and not _NETWORK.match(self.network):
            raise GitAgentError(f"bad {key}network {self.network!r}: a podman network name")
        self.labels = ["--label", "io.git-agent.worker=1"]
        if repo_id is not None and session is not None:
            self.container, self.volume = names(repo_id, session)
            self.labels += ["--label", f"io.git-agent.repo={repo_id}",
                            "--label", f"io.git-agent.session={session}"]
            self.volatile = False
        else:  # doctor: a container and a volume of its own, both removed
            self.container = self.volume = f"git-agent-doctor-{secrets.token_hex(8)}"
            self.volatile = True
        self.up = False
        self.started: threading.Thread | None = None
        self.failed = ""

    def _podman(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.base, *args], stdin=subprocess.DEVNULL,
                              capture_output=True, check=False)

    def run_argv(self) -> list[str]:
        """`podman run` of the session's container: sleeping until the worker comes by exec."""
        # the volume: the worker's store, the session's state, the agent home (HOME), owned by
        # the container's ids (U: chowned to them, as each container has its own range)
        argv = [*self.base, "run", "-d", "--rm", "--name", self.container, *RUN_OPTIONS,
                *self.labels, "--volume", f"{self.volume}:{HOME}:U"]
        if self.network is not None:
            argv.append(f"--network={self.network}")
        return [*argv, "--", self.image, "sleep", "infinity"]

    def open(self, *, shared: bool) -> None:
        """Start creating the container (in a thread: run --on takes its snapshot meanwhile);
        ready() waits for it and says why it failed."""
        self.started = threading.Thread(target=self._create, daemon=True)
        self.started.start()

    def _create(self) -> None:
        try:
            self._make()
        except OSError as e:  # no podman here: said by ready(), nothing started
            self.failed = f"cannot run podman for {self.name}: {e.strerror}"

    def _make(self) -> None:
        """A leftover container of a killed run of this session is removed first (its state
        is on the volume); the volume is made labelled (`podman volume ls --filter
        label=io.git-agent.repo=ID` finds them), or exists already. One container is made at
        a time (--attempts makes N at once): podman 4.3 was seen to hang for good on two
        `run --userns=auto` at once; and a `podman run` that has not answered in CREATE_WAIT
        seconds is given up, said in one line."""
        with _one_at_a_time():
            self._podman("rm", "-f", "-t", "0", "--", self.container)
            made = self._podman("volume", "create", *self.labels, "--",
                                self.volume).returncode == 0
            try:
                p = subprocess.run(self.run_argv(), stdin=subprocess.DEVNULL,
                                   capture_output=True, check=False, timeout=CREATE_WAIT)
            except subprocess.TimeoutExpired:
                self.up = True  # close() removes whatever part of it exists
                self.failed = (f"{self.name}: podman did not make the container within "
                               f"{CREATE_WAIT} s; nothing ran")
                return
        self.up = True  # close() removes whatever part of it exists
        if p.returncode != 0:
            if made:  # a volume this failed run just made holds nothing
                self._podman("volume", "rm", "-f", "--", self.volume)
            self.failed = (self.explain(p.returncode, p.stderr.decode(errors="replace"))
                           or f"{self.name}: podman run failed")

    def ready(self) -> None:
        if self.started is None:
            self.open(shared=False)
        assert self.started is not None
        self.started.join()
        if self.failed:
            raise GitAgentError(self.failed)

    def warm(self) -> bool:
        return self.up and not self.failed and self.started is not None \
            and not self.started.is_alive()

    def discard(self) -> bool:
        """The session's container (if a run left one) and its volume: all of its copy."""
        try:
            self._podman("rm", "-f", "-t", "0", "--", self.container)
            gone = self._podman("volume", "rm", "-f", "--", self.volume)
        except OSError as e:
            raise GitAgentError(f"cannot run podman for {self.name}: {e.strerror}") from None
        if gone.returncode != 0:
            raise GitAgentError(self.explain(gone.returncode, gone.stderr.decode(
                errors="replace")) or f"{self.name}: podman volume rm failed")
        return True

    def hang_up(self) -> None:
        """SIGHUP to every process of the container but PID 1, as a closed terminal would: the
        agent ends, `git agent run` there captures what it left, its holder records how."""
        self._podman("exec", "--", self.container, "sh", "-c", "kill -HUP -1")

    def worker(self, *, tty: bool = False, ticket: str | None = None) -> list[str]:
        if ticket is not None and not _TICKET.match(ticket):
            raise GitAgentError("the worker answered a malformed ticket")
        self.ready()
        # --detach-keys="": no key sequence of the agent's terminal is podman's (ctrl-p ctrl-q)
        argv = [*self.base, "exec", "-i", *(["-t", "--detach-keys="] if tty else []),
                "--", self.container, "git-agent", "worker"]
        return argv + (["--ticket", ticket] if ticket is not None else [])

    def close(self) -> None:
        """Remove the container; a session's volume stays (its next run continues there),
        doctor's goes."""
        if self.started is not None:
            self.started.join()
        if self.up:
            self.up = False
            self._podman("rm", "-f", "-t", "0", "--", self.container)
            if self.volatile:
                self._podman("volume", "rm", "-f", "--", self.volume)

    def explain(self, status: int, stderr: str) -> str | None:
        last = printable(stderr.strip().splitlines()[-1]) if stderr.strip() else ""
        if "image not known" in stderr or "unable to find" in stderr.lower():
            return (f"{self.name} has no image {self.image} (build it with "
                    "contrib/podman/build-image, or set agent.remote.NAME.image)")
        if status == 127 and "executable file" in stderr:
            return f"no git agent in the image {self.image}: {last}"
        if status in (125, 126, 127):  # podman's own failure, not the worker's
            return f"{self.name}: {last or 'podman failed'}"
        return None
