"""What a session carries back to the shared agent home: declared regular files only, never
through a symlink, without set-id bits; JSON login files by their data keys only."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from git_agent.errors import UsageError
from git_agent.sandbox import agenthome
from git_agent.sandbox.agenthome import Keep
from git_agent.session import Session
from git_agent.settings import presets

CRED = ".claude/.credentials.json"


def _setup(tmp_path: Path) -> tuple[Session, Path, Path]:
    s = Session(name="x", dir=tmp_path / "state" / "sessions" / "x")
    up = agenthome.upper(s)
    up.mkdir(parents=True)
    shared = tmp_path / "aihome"
    shared.mkdir()
    return s, up, shared


def _carry(s: Session, shared: Path, keep: list[Keep]) -> list[str]:
    return agenthome.carry_back(session=s, agent_home=shared, keep=keep,
                                lock=s.dir.parent / "lock")


def _write(p: Path, text: str, mode: int = 0o600) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(mode)


def test_a_declared_login_file_is_carried_back_without_set_id_bits(tmp_path: Path) -> None:
    s, up, shared = _setup(tmp_path)
    _write(up / CRED, "token-A", 0o6755)
    _write(up / ".claude/settings.json", '{"hooks": "evil"}')  # not declared
    assert _carry(s, shared, [Keep(CRED)]) == []
    st = os.lstat(shared / CRED)
    assert stat.S_ISREG(st.st_mode) and (shared / CRED).read_text() == "token-A"
    assert stat.S_IMODE(st.st_mode) == 0o600  # private: no set-id bits, not the session's bits
    assert stat.S_IMODE(os.stat(shared / ".claude").st_mode) == 0o700  # a dir made: private
    assert not (shared / ".claude/settings.json").exists()
    assert not (up / CRED).exists()  # the session sees the shared copy from now on
    assert (up / ".claude/settings.json").exists()


def test_a_declared_file_replaced_by_a_symlink_is_not_carried_back(tmp_path: Path) -> None:
    s, up, shared = _setup(tmp_path)
    _write(shared / CRED, "token-old")
    (up / ".claude").mkdir()
    (up / CRED).symlink_to("/etc/passwd")
    warnings = _carry(s, shared, [Keep(CRED)])
    assert warnings and "not a regular file" in warnings[0]
    assert not (shared / CRED).is_symlink() and (shared / CRED).read_text() == "token-old"


def test_nothing_is_carried_back_through_a_symlinked_dir(tmp_path: Path) -> None:
    s, up, shared = _setup(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    _write(elsewhere / ".credentials.json", "outside")
    (up / ".claude").symlink_to(elsewhere)  # in the session: not followed when reading
    assert _carry(s, shared, [Keep(CRED)])
    assert not (shared / ".claude").exists()
    # in the shared home: not followed when writing
    (up / ".claude").unlink()
    _write(up / CRED, "token-A")
    (shared / ".claude").symlink_to(elsewhere)
    warnings = _carry(s, shared, [Keep(CRED)])
    assert warnings and "symlink" in warnings[0]
    assert (elsewhere / ".credentials.json").read_text() == "outside"


def test_fifos_devices_and_oversized_files_stay_in_the_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s, up, shared = _setup(tmp_path)
    (up / ".cache/pip").mkdir(parents=True)
    os.mkfifo(up / ".cache/pip/fifo")
    _write(up / ".cache/pip/big", "x" * 100)
    _write(up / ".cache/pip/small", "ok")
    monkeypatch.setattr(agenthome, "MAX_FILE", 10)
    warnings = _carry(s, shared, [Keep(".cache/pip")])
    assert (shared / ".cache/pip/small").read_text() == "ok"
    assert sorted(os.listdir(shared / ".cache/pip")) == ["small"]
    assert len(warnings) == 2 and (up / ".cache/pip/big").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="a whiteout is a 0/0 device: root makes it here")
def test_a_deletion_is_not_carried_back(tmp_path: Path) -> None:
    s, up, shared = _setup(tmp_path)
    _write(shared / ".cache/pip/kept", "shared")
    (up / ".cache/pip").mkdir(parents=True)
    os.mknod(up / ".cache/pip/kept", stat.S_IFCHR | 0o600, 0)
    assert _carry(s, shared, [Keep(".cache/pip")]) == []
    assert (shared / ".cache/pip/kept").read_text() == "shared"


def test_only_the_data_keys_of_a_json_login_file_are_carried_back(tmp_path: Path) -> None:
    s, up, shared = _setup(tmp_path)
    _write(shared / ".claude.json", json.dumps({"theme": "dark", "mine": 1}))
    _write(up / ".claude.json", json.dumps({
        "oauthAccount": {"email": "a@b"}, "mcpServers": {"x": {"command": "evil"}},
        "projects": {"/r": {"mcpServers": {}}}, "theme": "light"}))
    keep = agenthome.declared(keep=(), keep_json={".claude.json": presets.CLAUDE_JSON_KEYS},
                              home_keep=[])
    assert _carry(s, shared, keep) == []
    assert json.loads((shared / ".claude.json").read_text()) == {
        "theme": "light", "mine": 1, "oauthAccount": {"email": "a@b"}}
    assert (up / ".claude.json").exists()  # the session keeps its own (its projects)


def test_a_path_the_user_lists_is_carried_back_whole(tmp_path: Path) -> None:
    s, up, shared = _setup(tmp_path)
    _write(up / ".claude.json", json.dumps({"mcpServers": {"x": {}}}))
    keep = agenthome.declared(keep=(), keep_json={".claude.json": ("theme",)},
                              home_keep=["~/.claude.json"])
    assert keep == [Keep(".claude.json")]
    _carry(s, shared, keep)
    assert "mcpServers" in json.loads((shared / ".claude.json").read_text())


def test_under_an_opaque_dir_the_session_keeps_its_copy(tmp_path: Path) -> None:
    s, up, shared = _setup(tmp_path)
    _write(up / CRED, "token-A")
    name = "trusted.overlay.opaque" if os.geteuid() == 0 else "user.overlay.opaque"
    try:
        os.setxattr(up / ".claude", name, b"y")
    except OSError:
        pytest.skip("no xattrs here")
    assert _carry(s, shared, [Keep(CRED)]) == []
    assert (shared / CRED).read_text() == "token-A" and (up / CRED).exists()


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "/etc/passwd", "~/../x"])
def test_home_keep_names_a_path_inside_the_home(bad: str) -> None:
    with pytest.raises(UsageError, match="agent.homeKeep"):
        agenthome.declared(keep=(), keep_json={}, home_keep=[bad])


def test_a_preset_never_declares_a_code_bearing_path() -> None:
    keep = agenthome.declared(keep=(".claude/settings.json", ".local/bin", CRED), keep_json={},
                              home_keep=[])
    assert keep == [Keep(CRED)]  # dropped at run time too
    for p in presets.PRESETS.values():
        for rel in (*p.keep, *p.keep_json):
            assert not agenthome.code_bearing(rel), (p.name, rel)
            assert agenthome.check_rel(rel, "x") == rel


def test_an_agent_home_that_cannot_be_opened_is_a_warning(tmp_path: Path) -> None:
    s, up, shared = _setup(tmp_path)
    _write(up / CRED, "token-A")
    shared.rmdir()  # gone meanwhile: a warning, no exception (the capture still happens)
    warnings = _carry(s, shared, [Keep(CRED)])
    assert len(warnings) == 1 and "nothing carried back" in warnings[0]
    assert (up / CRED).exists()


def test_an_agent_home_reached_through_a_symlink_the_user_made_works(tmp_path: Path) -> None:
    s, up, shared = _setup(tmp_path)
    _write(up / CRED, "token-A")
    link = tmp_path / "aihome-link"
    link.symlink_to(shared)
    assert agenthome.carry_back(session=s, agent_home=link, keep=[Keep(CRED)],
                                lock=tmp_path / "lock") == []
    assert (shared / CRED).read_text() == "token-A"
