"""The real-client tests are opt-in: they run with `-m agents`, else they are skipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents import clients

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "agents" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="real agent clients: opt in with -m agents")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _report_install_times() -> Iterator[None]:
    yield
    if clients.TIMES:
        print("\nclient installs (s, 0 = cached): "
              + ", ".join(f"{k} {v:.0f}" for k, v in clients.TIMES.items()))
