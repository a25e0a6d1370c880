"""Shared fixtures: a hermetic environment and real repos, as root and as an unprivileged user.

Every test that takes `actor` runs twice: as root (when the suite runs as root) and as an
unprivileged user (created once by `useradd` when missing; when the suite itself runs
unprivileged, that user is simply the current one).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TEST_USER = os.environ.get("GIT_AGENT_TEST_USER", "git-agent-test")
TEST_TMP = os.environ.get("GIT_AGENT_TEST_TMP", "/tmp")  # not TMPDIR: the user must reach it
FIXED_DATE = "1700000000 +0000"

# The terminal's signals as a user at a terminal has them. Started in the background (`cmd &`
# in a script, nohup), the suite inherits INT and QUIT (HUP) ignored, and an ignored signal
# stays ignored across exec: children could not be interrupted, and the tests of ^C would test
# nothing.
for _signum, _default in ((signal.SIGINT, signal.default_int_handler),
                          (signal.SIGQUIT, signal.SIG_DFL), (signal.SIGHUP, signal.SIG_DFL)):
    if signal.getsignal(_signum) == signal.SIG_IGN:
        signal.signal(_signum, _default)


def _ensure_test_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    if os.geteuid() != 0:
        return None
    subprocess.run(
        ["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER],
        check=True, capture_output=True,
    )
    return pwd.getpwnam(TEST_USER)


@dataclass
class Actor:
    """Who runs the commands of a test, with a private HOME and state dir."""

    name: str  # "root" or "user"
    uid: int
    gid: int
    base: Path  # a scratch dir this actor owns
    env: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def _argv(self, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
        args = [os.fspath(a) for a in argv]
        if self.uid != os.geteuid():
            args = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                    "--reset-env", "--", "env", *[f"{k}={v}" for k, v in self.env.items()], *args]
        return args

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | str | None = None,
        input: bytes | str | None = None,
        check: bool = False,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**self.env, **(env or {})}
        data = input.encode() if isinstance(input, str) else input
        p = subprocess.run(
            self._argv(argv) if not env else self._with_env(argv, env),
            cwd=cwd,
            env=full_env,
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
        out = subprocess.CompletedProcess(
            p.args,
            p.returncode,
            p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace"),
        )
        if check and p.returncode != 0:
            raise AssertionError(f"{argv} failed ({p.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def _with_env(self, argv: Sequence[str | os.PathLike[str]], env: dict[str, str]) -> list[str]:
        saved = self.env
        self.env = {**saved, **env}
        try:
            return self._argv(argv)
        finally:
            self.env = saved

    def agent(self, *args: str, cwd: Path | str, **kw: object) -> subprocess.CompletedProcess[str]:
        """Run `git agent ARGS` as a user would (through git, finding git-agent on PATH)."""
        return self.run(["git", "agent", *args], cwd=cwd, **kw)  # type: ignore[arg-type]

    def git(self, *args: str, cwd: Path | str, **kw: object) -> str:
        p = self.run(["git", *args], cwd=cwd, check=True, **kw)  # type: ignore[arg-type]
        return p.stdout

    def own(self, path: Path) -> None:
        if self.uid != os.geteuid():
            subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", os.fspath(path)], check=True)

    def make_repo(self, name: str = "repo", files: dict[str, str] | None = None) -> Path:
        """A repo with one commit (files default to a small tree), owned by this actor."""
        root = self.base / name
        root.mkdir(parents=True)
        self.own(root)
        self.git("init", "-q", "-b", "main", cwd=root)
        for rel, text in (
            files if files is not None else {"README.md": "hello\n", "src/app.py": "print('hi')\n"}
        ).items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        self.own(root)
        if files != {}:
            self.git("add", "-A", cwd=root)
            self.git("commit", "-q", "-m", "initial", cwd=root)
        return root


def _bin_dir() -> str:
    return str(Path(sys.executable).parent)


def _make_actor(kind: str, base: Path) -> Actor:
    if kind == "root":
        if os.geteuid() != 0:
            pytest.skip("the root variant needs the suite to run as root")
        uid = gid = 0
    else:
        if os.geteuid() == 0:
            pw = _ensure_test_user()
            if pw is None:
                pytest.skip(f"no unprivileged test user {TEST_USER}")
            uid, gid = pw.pw_uid, pw.pw_gid
        else:
            uid, gid = os.getuid(), os.getgid()
    base.mkdir(parents=True, mode=0o755)
    actor = Actor(name=kind, uid=uid, gid=gid, base=base)
    actor.home.mkdir()
    (actor.home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n"
        "[advice]\n\tdetachedHead = false\n"
    )
    actor.own(base)
    actor.env = {
        "HOME": str(actor.home),
        "USER": "root" if uid == 0 else TEST_USER,
        "LOGNAME": "root" if uid == 0 else TEST_USER,
        "PATH": f"{_bin_dir()}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "LANG": "C.UTF-8",
        "SHELL": "/bin/sh",
        "TERM": "dumb",
        "XDG_CONFIG_HOME": str(actor.home / ".config"),
        "XDG_STATE_HOME": str(actor.home / ".local" / "state"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_DATE": FIXED_DATE,
        "GIT_COMMITTER_DATE": FIXED_DATE,
        "GIT_AGENT_TEST": "1",
    }
    for k in ("GIT_AGENT_BWRAP",):
        if k in os.environ:
            actor.env[k] = os.environ[k]
    return actor


@pytest.fixture(scope="session")
def _test_root() -> Iterator[Path]:
    # A new dir each run, never a fixed name: another user's run (or anyone) may hold that one.
    os.makedirs(TEST_TMP, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="git-agent-tests-", dir=TEST_TMP))
    os.chmod(run_dir, 0o755)  # the unprivileged user must reach its own dirs below
    yield run_dir
    if not os.environ.get("GIT_AGENT_KEEP_TEST_DIRS"):
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(params=["root", "user"])
def actor(request: pytest.FixtureRequest, _test_root: Path) -> Actor:
    """Parametrized: the test runs as root and as an unprivileged user."""
    return _make_actor(request.param, _test_root / uuid.uuid4().hex[:10])


@pytest.fixture
def root_actor(_test_root: Path) -> Actor:
    return _make_actor("root", _test_root / uuid.uuid4().hex[:10])


@pytest.fixture
def user_actor(_test_root: Path) -> Actor:
    return _make_actor("user", _test_root / uuid.uuid4().hex[:10])


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """For in-process tests: a private HOME and git config, fixed dates. Returns the home."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    for k in list(os.environ):
        if k.startswith("GIT_") and k != "GIT_AGENT_BWRAP":
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_DATE", FIXED_DATE)
    monkeypatch.setenv("GIT_COMMITTER_DATE", FIXED_DATE)
    return home


@pytest.fixture
def repo(hermetic: Path, tmp_path: Path) -> Path:
    """A real repo (in-process tests) with one commit."""
    root = tmp_path / "repo"
    root.mkdir()
    run_git("init", "-q", "-b", "main", cwd=root)
    (root / "README.md").write_text("hello\n")
    run_git("add", "-A", cwd=root)
    run_git("commit", "-q", "-m", "initial", cwd=root)
    return root


def run_git(*args: str, cwd: Path | str, input: bytes | None = None) -> str:
    p = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, check=False)
    if p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {p.stderr.decode(errors='replace')}")
    return p.stdout.decode(errors="surrogateescape")
