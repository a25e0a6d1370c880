"""A running sandbox swapping a dir of its upper for a symlink to a host dir (between the walk
and the read, as a RENAME_EXCHANGE loop would) never gets a host file read, imported, deleted.

The races are made deterministic: the swap happens right after the step that looked at the
dir. Each test fails on code that reaches upper entries by joined path strings.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest

from git_agent import beneath, repo, session
from git_agent.capture import commit as capture
from git_agent.capture import overlay
from git_agent.capture import snapshot as base
from git_agent.mergeback import consume
from tests.conftest import run_git

SECRET = "host secret\n"
SRC = Path(__file__).resolve().parents[2]


def swap_for_link(d: Path, target: Path) -> None:
    """What the agent does: its dir d becomes a symlink to a host dir."""
    d.rename(d.with_name(d.name + ".moved"))
    os.symlink(target, d)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    h = tmp_path / "host"
    h.mkdir()
    (h / "f").write_text(SECRET)
    (h / "g").write_text(SECRET)
    return h


def test_beneath_never_follows_a_component(tmp_path: Path, host: Path) -> None:
    root = tmp_path / "r"
    (root / "d").mkdir(parents=True)
    os.symlink(host, root / "l")
    fd = beneath.open_root(root)
    try:
        for rel in (b"l", b"l/f"):
            with pytest.raises(OSError):
                os.close(beneath.open_file(fd, rel) if rel.endswith(b"f") else
                         beneath.open_dir(fd, rel))
        with pytest.raises(ValueError):
            beneath.open_dir(fd, b"d/../l")
        with beneath.parent(fd, b"d/x") as (d, name):
            assert name == b"x"
            assert os.path.samefile(beneath.proc_path(d), root / "d")
    finally:
        os.close(fd)


@pytest.mark.parametrize("when", ["after-listing", "before-entering"])
def test_walk_never_enters_a_dir_swapped_for_a_symlink(
        tmp_path: Path, host: Path, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    up = tmp_path / "up"
    (up / "d").mkdir(parents=True)
    (up / "d" / "mine").write_text("x")
    real = os.scandir
    calls: list[Any] = []

    def scandir(path: Any = ".") -> Any:
        calls.append(path)
        if len(calls) == 2 and when == "before-entering":
            swap_for_link(up / "d", host)  # d was seen as a dir: now it is entered
        it = real(path)
        if len(calls) == 1 and when == "after-listing":
            swap_for_link(up / "d", host)  # the top dir is listed: d is a link from now on
        return it

    monkeypatch.setattr(os, "scandir", scandir)
    got = [c.path for c in overlay.walk(up)]
    assert not any(p.endswith((b"/f", b"/g")) for p in got), got  # the host's never listed


def test_count_never_enters_a_symlink(tmp_path: Path, host: Path) -> None:
    up = tmp_path / "up"
    up.mkdir()
    os.symlink(host, up / "l")
    assert overlay.count(up) == 1


def test_merged_dir_never_follows_a_symlinked_parent(tmp_path: Path, host: Path) -> None:
    low, up = tmp_path / "low", tmp_path / "up"
    (low / "refs").mkdir(parents=True)
    up.mkdir()
    os.symlink(host, up / "refs")
    assert overlay.MergedDir(upper=up, lower=low).read("refs/f") is None
    (up / "wt").mkdir()
    os.symlink(host, up / "wt" / "x")
    assert overlay.MergedDir(upper=up, lower=low, under="wt/x").read("f") is None


# -- capture, in process, on a hand-made upper


@contextlib.contextmanager
def in_dir(d: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(d)
    try:
        yield
    finally:
        os.chdir(old)


def _session(repo_root: Path) -> tuple[repo.Worktree, session.Session]:
    wt = repo.find_worktree(repo_root)
    s = session.get(wt, "t")
    session.create(wt, s)
    return wt, s


def _capture(wt: repo.Worktree, s: session.Session) -> capture.CaptureResult:
    return capture.capture(worktree=wt, session=s, base=base.snapshot(worktree=wt),
                           command=["x"])


def _all_blobs(root: Path) -> bytes:
    out = run_git("cat-file", "--batch-all-objects", "--batch", cwd=root)
    return out.encode(errors="surrogateescape")


def test_capture_never_reads_through_a_swapped_parent(
        repo: Path, host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wt, s = _session(repo)
    (s.upper / "d").mkdir()
    (s.upper / "d" / "f").write_text("agent's own\n")
    (s.upper / "d" / "g").symlink_to("somewhere")
    real: Callable[..., Any] = capture.read_upper

    def changes(*a: Any, **kw: Any) -> Any:
        got = real(*a, **kw)
        swap_for_link(s.upper / "d", host)  # walked; now read
        return got

    monkeypatch.setattr(capture, "read_upper", changes)
    r = _capture(wt, s)
    assert SECRET.encode() not in _all_blobs(repo)
    if r.commit is not None:
        assert run_git("ls-tree", "-r", "--name-only", r.commit, cwd=repo).split() \
            == ["README.md"]


@pytest.mark.parametrize("where", ["objects", "objects/pack"])
def test_symlinked_object_store_is_not_imported(repo: Path, tmp_path: Path, where: str) -> None:
    """A statically planted link to another repo's store, HEAD moved to a commit there."""
    other = tmp_path / "other"
    run_git("clone", "-q", str(repo), str(other), cwd=tmp_path)
    (other / "secret.txt").write_text(SECRET)
    run_git("add", "secret.txt", cwd=other)
    run_git("commit", "-qm", "foreign", cwd=other)
    if where == "objects/pack":
        run_git("gc", "-q", "--prune=now", cwd=other)
    foreign = run_git("rev-parse", "HEAD", cwd=other).strip()
    wt, s = _session(repo)
    g = s.upper / ".git"
    (g / "refs" / "heads").mkdir(parents=True)
    (g / "refs" / "heads" / "main").write_text(foreign + "\n")
    if where == "objects":
        os.symlink(other / ".git" / "objects", g / "objects")
    else:
        (g / "objects").mkdir()
        os.symlink(other / ".git" / "objects" / "pack", g / "objects" / "pack")
    r = _capture(wt, s)
    assert r.squashed and r.imported == 0
    assert pygit2.Oid(hex=foreign) not in pygit2.Repository(str(repo)).odb
    assert SECRET.encode() not in _all_blobs(repo)


_BIG_CAPTURE = """
import resource, sys
from git_agent import repo, session
from git_agent.capture import snapshot as base
from git_agent.capture import commit as capture
wt = repo.find_worktree()
s = session.get(wt, 't')
r = capture.capture(worktree=wt, session=s, base=base.snapshot(worktree=wt), command=['x'])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print("\\n".join(r.warnings))
"""


def test_huge_sparse_file_is_skipped_in_little_memory(repo: Path) -> None:
    wt, s = _session(repo)
    with open(s.upper / "huge", "wb") as f:
        f.truncate(2 << 30)
    (s.upper / "small").write_text("kept\n")
    p = subprocess.run([sys.executable, "-c", _BIG_CAPTURE], cwd=repo, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300,
                       preexec_fn=lambda: resource.setrlimit(
                           resource.RLIMIT_AS, (3 << 30, 3 << 30)))
    assert p.returncode == 0, p.stderr
    maxrss_kib, *warnings = p.stdout.splitlines()
    assert int(maxrss_kib) < 300 << 10
    assert any("huge" in w and "bigger than" in w for w in warnings), warnings
    assert run_git("ls-tree", "-r", "--name-only", "agent/t", cwd=repo).split() == \
        ["README.md", "small"]
    assert (s.upper / "huge").stat().st_size == 2 << 30  # left in the session


# -- consume


def test_consume_never_deletes_through_a_swapped_parent(
        tmp_path: Path, host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    up = tmp_path / "upper"
    (up / "d" / "e").mkdir(parents=True)
    (up / "d" / "f").write_text("x")
    (up / "d" / "e" / "g").write_text("x")
    (host / "e").mkdir()
    (host / "e" / "g").write_text(SECRET)
    real: Callable[..., Any] = consume._cover
    swapped: list[bytes] = []

    def cover(root: Any, path: bytes, *rest: Any) -> Any:
        got = real(root, path, *rest)
        if not swapped:
            swap_for_link(up / "d", host)
            swapped.append(path)
        return got

    monkeypatch.setattr(consume, "_cover", cover)
    with contextlib.suppress(OSError):
        consume.consume_paths(up, {b"d/f", b"d/e/g"}, {b"d/f", b"d/e/g"})
    assert (host / "f").read_text() == SECRET
    assert (host / "e" / "g").read_text() == SECRET
    assert sorted(os.listdir(host)) == ["e", "f", "g"]


def test_consume_restore_never_writes_through_a_symlinked_dir(tmp_path: Path,
                                                             host: Path) -> None:
    """A rejected path below an opaque dir whose subdir is (now) a link to the host."""
    up = tmp_path / "upper"
    (up / "o").mkdir(parents=True)
    try:
        os.setxattr(up / "o", "user.overlay.opaque", b"y")
    except OSError:
        pytest.skip("no user xattrs here")
    (up / "o" / "keep").write_text("pending\n")
    os.symlink(host, up / "o" / "s")
    with contextlib.suppress(OSError):
        consume.consume_paths(up, {b"o/s/f"}, {b"o/s/f", b"o/keep"},
                              rejected={b"o/s/f": (0o100644, b"base\n")})
    assert (host / "f").read_text() == SECRET
