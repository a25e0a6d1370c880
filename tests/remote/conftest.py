"""The sshd fixture of the remote tests: tests/remote/sshd.py's harness (a real sshd on
loopback for a created remote user), once per test session; skipped where it cannot run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Actor
from tests.remote import sshd as harness


class Sshd(harness.Sshd):
    """The harness's sshd, its client config made for an Actor."""

    def client(self, actor: Actor, *, host_pub: str | None = None) -> Path:  # type: ignore[override]
        return super().client(actor.base, actor.own, host_pub=host_pub)


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    try:
        with harness.running() as s:
            yield Sshd(s.dir, s.port, s.host_pub, s.authorized, s.user)
    except harness.Unavailable as e:
        pytest.skip(str(e))


__all__ = ["Sshd", "sshd"]
