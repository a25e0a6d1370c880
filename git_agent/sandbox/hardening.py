"""Which protections a launch gets: seccomp, Landlock scopes, network set-up (fail closed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from git_agent.errors import SandboxUnavailable
from git_agent.sandbox.launch import Hooks


def hooks(*, net: str, allow_ports: Sequence[int]) -> tuple[Hooks, list[str]]:
    """The launch hooks for this network mode, and warnings for default protections missing here."""
    from git_agent.sandbox import landlock, seccomp

    program = seccomp.build_filter()  # first: no filter for this architecture, no launch
    notes: list[str] = []
    preexec = None
    if landlock.abi_version() >= 6:
        preexec = landlock.prepare_scope_restriction()
    elif net == "host":
        # the other modes have their own network namespace, which shuts abstract sockets anyway
        notes.append(
            "this kernel lacks Landlock scopes (ABI >= 6): host abstract unix sockets (X11, "
            "D-Bus) stay reachable in --net host; use --net none/isolated, see `git agent doctor`"
        )
    network = _pasta(allow_ports) if net == "isolated" else None
    return Hooks(seccomp=program, preexec=preexec, network=network), notes


def _pasta(allow_ports: Sequence[int]) -> Callable[[int], Callable[[], None]]:
    from git_agent.sandbox import network

    network.check_pasta()  # before launch: refuse with the fix rather than start without network

    def setup(child_pid: int) -> Callable[[], None]:
        p = network.start_pasta(child_pid=child_pid, allow_ports=list(allow_ports))
        return p.stop

    return setup


__all__ = ["hooks", "SandboxUnavailable"]
