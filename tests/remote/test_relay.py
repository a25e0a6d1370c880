"""The holder of a remote run (remote/relay.py, remote/detached.py) without ssh: its socket and
its ring of output are the remote user's only, a run directory that is not private to that
user is refused before anything runs, and the names of an attach request are checked."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from git_agent.errors import GitAgentError
from git_agent.remote import detached, host, relay
from tests.conftest import TEST_USER

REPO_ID = "b" * 40


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    os.chmod(tmp_path, 0o755)
    return tmp_path


def _start(data: Path, script: str) -> Path:
    detached.start(REPO_ID, "s", argv=["/bin/sh", "-c", script], env={"PATH": "/usr/bin:/bin"},
                   cwd=str(data), tty=False)
    return host.data_root() / "runs" / f"{REPO_ID}-s"


@pytest.fixture
def short(data: Path) -> Iterator[Path]:
    """A short path to the run directory (a socket's path has 108 bytes; tmp_path is long):
    a link, so reaching through it still takes the directories' permissions."""
    link = Path(tempfile.mkdtemp(prefix="ga-r-")) / "r"
    link.symlink_to(host.data_root() / "runs" / f"{REPO_ID}-s")
    os.chmod(link.parent, 0o755)
    yield link
    shutil.rmtree(link.parent)


def _as_other_user(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", f"--reuid={TEST_USER}", f"--regid={TEST_USER}",
                           "--init-groups", "--", "/usr/bin/python3", "-c", code],
                          capture_output=True, text=True, timeout=60)


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
        if relay.EXIT in got[-16:]:
            break
    return got


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_the_attach_socket_and_its_ring_are_the_remote_users_only(data: Path,
                                                                   short: Path) -> None:
    """Promise (docs/security.md, "Runs that outlive their connection"): the run's socket lives
    in a 0700 directory of the remote user, which nobody else enters; and a process of another
    user that reaches the socket anyway (here through a hard link in an open directory)
    is hung up on before it gets one byte of the ring (SO_PEERCRED)."""
    run = _start(data, "echo output-of-the-agent; read x; echo \"$x\" > got.txt")
    for d in (run.parent, run):
        st = d.lstat()
        assert st.st_uid == os.geteuid() and st.st_mode & 0o777 == 0o700, oct(st.st_mode)
    assert (run / "sock").exists()
    probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1])\n"
             "except PermissionError:\n print('refused')\nelse:\n s.settimeout(10)\n"
             " print('got', s.recv(100))\n")
    p = _as_other_user(probe.replace("sys.argv[1]", repr(str(short / "sock"))))
    assert p.stdout.strip() == "refused", p.stdout + p.stderr
    leaked = short.parent / "leaked"  # the socket itself reached another way: a hard link
    os.link(run / "sock", leaked)
    os.chmod(leaked, 0o777)
    p = _as_other_user(probe.replace("sys.argv[1]", repr(str(leaked))))
    assert p.stdout.strip() == "got b''", p.stdout + p.stderr
    # the user's own attach gets the ring, then the run's end
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(short / "sock"))
        s.sendall(relay.frame(relay.IN, b"typed\n") + relay.frame(relay.EOF))
        got = _read_all(s)
    assert b"output-of-the-agent" in got and relay.frame(relay.EXIT, b"0") in got
    assert (data / "got.txt").read_text() == "typed\n"
    deadline = time.monotonic() + 30
    while detached.state(REPO_ID, "s").get("running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert detached.state(REPO_ID, "s") == {"running": False, "status": 0, "signal": None,
                                            "checkpointed": False}


@pytest.mark.parametrize("kind", ["open", "link", "file"])
def test_a_run_directory_not_private_to_the_user_is_refused(data: Path, kind: str) -> None:
    """Promise: a run directory someone else made (open to others, a symlink, not a
    directory) is never used: the run is refused before anything starts."""
    runs = host.data_root() / "runs"
    runs.mkdir(parents=True, mode=0o700)
    target = runs / f"{REPO_ID}-s"
    if kind == "open":
        target.mkdir()
        os.chmod(target, 0o755)
    elif kind == "link":
        (data / "elsewhere").mkdir(mode=0o700)
        target.symlink_to(data / "elsewhere")
    else:
        target.write_text("")
    with pytest.raises(GitAgentError, match="run directory"):
        _start(data, "echo ran > ran.txt")
    time.sleep(0.2)
    assert not (data / "ran.txt").exists() and not (data / "elsewhere" / "sock").exists()


def test_an_attach_request_names_are_checked(data: Path) -> None:
    """Promise: session names and repository ids of an attach request are validated as a
    prepare's are (no path out of the store), and a ticket is 32 hex digits."""
    reqs: list[dict[str, object]] = [{"repo_id": REPO_ID, "session": "../x"},
                                     {"repo_id": "../x", "session": "s"},
                                     {"repo_id": REPO_ID, "session": 3}]
    for req in reqs:
        with pytest.raises(GitAgentError, match="bad|invalid"):
            host.attach_ticket(req)
    with pytest.raises(GitAgentError, match="bad ticket"):
        host.run_ticket("../../x")
    assert not (host.data_root() / "runs").exists() or \
        not any((host.data_root() / "runs").iterdir())


def test_the_ring_keeps_the_most_recent_output(data: Path, short: Path) -> None:
    """The replay an attach gets is bounded: the last RING bytes (whole chunks), not all."""
    big = relay.RING * 3
    _start(data, f"head -c {big} /dev/zero | tr '\\0' a; echo END; read x")
    deadline = time.monotonic() + 30
    with socket.socket(socket.AF_UNIX) as s:
        while True:  # until the output has all gone by
            time.sleep(0.2)
            s2 = socket.socket(socket.AF_UNIX)
            s2.connect(str(short / "sock"))
            s2.settimeout(1)
            got = b""
            try:
                while chunk := s2.recv(1 << 20):
                    got += chunk
            except TimeoutError:
                pass
            s2.close()
            if b"END" in got or time.monotonic() > deadline:
                break
        assert b"END" in got and len(got) <= relay.RING + 65536 + 5
        s.connect(str(short / "sock"))
        s.sendall(relay.frame(relay.EOF))
        _read_all(s)


def test_asking_how_a_run_stands_never_takes_the_attached_clients_place(data: Path,
                                                                        short: Path) -> None:
    """fetch, prepare and attach ask the worker how a run stands; that question (the holder's
    lock) must not hang up on whoever is attached (a newer attach does)."""
    _start(data, 'read x; echo "$x" > got.txt')
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(short / "sock"))
        time.sleep(0.2)  # accepted
        for _ in range(3):
            assert detached.state(REPO_ID, "s") == {"running": True}
        s.sendall(relay.frame(relay.IN, b"still here\n") + relay.frame(relay.EOF))
        assert relay.frame(relay.EXIT, b"0") in _read_all(s)
    assert (data / "got.txt").read_text() == "still here\n"
