"""What run --on, fetch and remote doctor need from a transport (an engine): a command that
starts the worker with its stdin and stdout as the conversation (with a pty or without), the
lifetime of what that command runs in, and what its failures mean. ssh (remote/ssh.py) and
Podman (remote/podman.py) are the two engines; Kubernetes (`kubectl exec -i POD -- git-agent
worker`) is the next (docs/remote.md, "Engines")."""

from __future__ import annotations

from typing import Protocol

from git_agent.remote.remotes import Target
from git_agent.settings import gitconfig


class Engine(Protocol):
    """One remote, reached for one repository's session (or none: doctor).

    open(shared=...) begins the lifetime: ssh starts the shared login when the caller will make
    several connections; Podman creates the session's container. ready() waits for it (ssh: the
    login; the caller took its snapshot meanwhile). worker(tty=, ticket=) is the argv whose
    stdin/stdout are the worker's (a JSON line, then counted bytes; docs/remote.md "Framing"),
    a pty when tty (the run only); nothing of the request is ever in it. close() ends the
    lifetime (idempotent). explain(status, stderr) turns the engine's own failure (not the
    worker's answer) into one line, or None.

    lasting: a run goes on there after the connection (and close()) ends, so --detach, attach
    and a lost connection's "it goes on" hold (ssh); Podman's container ends with run --on.
    warm(): a second worker connection can be started now without a login of its own (run
    --on's early fetch conversation). discard(): the session's copy there removed by the
    engine itself (Podman: its container and volume), True; False: ask the worker (op drop).
    hang_up(): on an engine not lasting, the run still going on when its connection ended gets
    SIGHUP, as on a closed terminal (its `git agent run` captures before it exits)."""

    name: str  # what messages call the remote
    lasting: bool

    def open(self, *, shared: bool) -> None: ...

    def ready(self) -> None: ...

    def worker(self, *, tty: bool = False, ticket: str | None = None) -> list[str]: ...

    def close(self) -> None: ...

    def warm(self) -> bool: ...

    def discard(self) -> bool: ...

    def hang_up(self) -> None: ...

    def explain(self, status: int, stderr: str) -> str | None: ...


def early(target: Target) -> bool:
    """Can the engine's lifetime start before the session is known (ssh's login: yes; a
    Podman container is named after the session)?"""
    return target.engine == "ssh"


def lasting(target: Target) -> bool:
    """Does a run there outlive its connection (Engine.lasting, known before connecting)?"""
    return target.engine != "podman"


def connect(target: Target, cfg: gitconfig.GitConfig, *, repo_id: str | None = None,
            session: str | None = None) -> Engine:
    """The engine of target, for one session of the repository repo_id (None: doctor)."""
    if target.engine == "podman":
        from git_agent.remote.podman import Podman

        return Podman(target, cfg, repo_id=repo_id, session=session)
    from git_agent.remote.ssh import Ssh

    return Ssh(target, cfg)
