"""Doctor's verdict on the remote, remembered (remote/soundness.py): a pass is not probed again
while nothing it depends on changed; a change of the config or of the bwrap that would run, a
FAIL, or age probes again. Without ssh: the worker's functions in this process."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from git_agent.remote import soundness


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gitconfig").write_text("")
    return tmp_path


class Probe:
    def __init__(self, answer: bool = True):
        self.answer = answer
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.answer


def test_a_pass_is_remembered_until_the_config_changes(env: Path) -> None:
    probe = Probe()
    assert soundness.remembered(probe) and soundness.remembered(probe)
    assert probe.calls == 1
    f = env / "data" / "git-agent" / "remote" / "doctor.json"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    (env / "gitconfig").write_text("[agent]\n\tbwrap = /nonexistent/bwrap\n")
    assert soundness.remembered(probe) and probe.calls == 2  # probed again


def test_a_replaced_bwrap_is_probed_again(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = env / "bwrap"
    fake.write_text("#!/bin/sh\necho bubblewrap 0.11.0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("GIT_AGENT_BWRAP", str(fake))
    probe = Probe()
    soundness.remembered(probe)
    soundness.remembered(probe)
    assert probe.calls == 1
    fake.write_text("#!/bin/sh\necho bubblewrap 0.12.0\n")  # upgraded in place
    os.utime(fake, ns=(1, 1))
    soundness.remembered(probe)
    assert probe.calls == 2


def test_a_fail_is_never_remembered(env: Path) -> None:
    probe = Probe()
    soundness.remembered(probe)
    probe.answer = False
    soundness.remembered(Probe())  # the pass still holds
    fail = Probe(False)
    # the key changed (here: the config), the probe fails: not remembered, the pass forgotten
    (env / "gitconfig").write_text("[agent]\n\tnet = none\n")
    assert not soundness.remembered(fail) and not soundness.remembered(fail)
    assert fail.calls == 2
    (env / "gitconfig").write_text("")
    again = Probe()
    assert soundness.remembered(again) and again.calls == 1


def test_an_old_pass_is_probed_again(env: Path) -> None:
    probe = Probe()
    soundness.remembered(probe, now=lambda: 1000.0)
    soundness.remembered(probe, now=lambda: 1000.0 + soundness.TTL - 1)
    assert probe.calls == 1
    soundness.remembered(probe, now=lambda: 1000.0 + soundness.TTL + 1)
    assert probe.calls == 2
