"""Which protections a launch gets: seccomp, Landlock scopes (fail closed).

The isolated and filtered networks need no launch hook: see sandbox/network.py."""

from __future__ import annotations

from git_agent.errors import SandboxUnavailable
from git_agent.sandbox.launch import Hooks


def hooks(*, net: str) -> tuple[Hooks, list[str]]:
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
    return Hooks(seccomp=program, preexec=preexec), notes


__all__ = ["hooks", "SandboxUnavailable"]
