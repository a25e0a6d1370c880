"""pasta's command line and the bwrap options per network mode."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from git_agent.errors import SandboxUnavailable
from git_agent.sandbox import network


def _opts(argv: list[str]) -> dict[str, str]:
    return {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}


def argv(ports: list[int]) -> list[str]:
    return network.pasta_argv(
        pasta=Path("/usr/bin/pasta"), allow_ports=ports, userns="/proc/self/fd/5",
        netns="/proc/self/fd/4", ready="/proc/self/fd/7",
    )


def test_no_ports_forwards_nothing() -> None:
    opts = _opts(argv([]))
    assert opts["--tcp-ns"] == "none"  # pasta's default, auto, would forward every host port
    assert opts["--udp-ns"] == opts["--tcp-ports"] == opts["--udp-ports"] == "none"
    assert "--no-map-gw" in argv([])


def test_allowed_ports_are_listed_once_in_order() -> None:
    assert _opts(argv([8080, 5432, 8080]))["--tcp-ns"] == "5432,8080"


@pytest.mark.parametrize("bad", [0, -1, 65536])
def test_bad_ports_are_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        argv([bad])


def test_namespaces_and_readiness_come_last_and_first() -> None:
    a = argv([1])
    assert a[-4:] == ["--userns", "/proc/self/fd/5", "--netns", "/proc/self/fd/4"]
    assert "--foreground" in a and _opts(a)["--pid"] == "/proc/self/fd/7"


def test_bwrap_args() -> None:
    assert network.bwrap_args(mode="host") == []
    assert network.bwrap_args(mode="none") == ["--unshare-net"]
    assert network.bwrap_args(mode="isolated") == ["--unshare-net"]
    with pytest.raises(ValueError):
        network.bwrap_args(mode="bridge")


def test_missing_pasta_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with pytest.raises(SandboxUnavailable, match="apt install passt"):
        network.check_pasta()


def test_closed_tun_device_says_how_to_open_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("git_agent.proc.which", lambda name: "/usr/bin/pasta")

    def refuse(path: str, flags: int) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr("git_agent.sandbox.network.os.open", refuse)
    with pytest.raises(SandboxUnavailable, match=r"chmod 0666 /dev/net/tun.*udev"):
        network.check_pasta()


def test_pasta_refuses_our_own_network_namespace() -> None:
    try:
        network.check_pasta()
    except SandboxUnavailable as e:
        pytest.skip(str(e))
    with pytest.raises(SandboxUnavailable, match="shares our network namespace"):
        network.start_pasta(child_pid=os.getpid(), allow_ports=[])
