"""capture's diff_trees: libgit2's diff (trees already in the repository) says what the
Python walk says, on every kind of change."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2

from git_agent.capture import tree as tree_mod
from git_agent.capture import treediff


def _git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                          check=True).stdout.decode().strip()


def _tree(repo: Path, entries: dict[str, tuple[str, bytes | str]]) -> str:
    """A tree from path -> (mode, content: bytes for a blob, an oid for a gitlink)."""
    idx = repo / ".git" / "idx"
    idx.unlink(missing_ok=True)
    env_args = ["-c", f"core.worktree={repo}"]
    for path, (mode, content) in entries.items():
        oid = content if isinstance(content, str) else _git(
            repo, "hash-object", "-w", "--stdin", input=content)
        subprocess.run(["git", *env_args, "update-index", "--add", "--cacheinfo",
                        f"{mode},{oid},{path}"], cwd=repo, check=True,
                       env={"GIT_INDEX_FILE": str(idx), "PATH": "/usr/bin:/bin"})
    return subprocess.run(["git", "write-tree"], cwd=repo, capture_output=True, check=True,
                          env={"GIT_INDEX_FILE": str(idx), "PATH": "/usr/bin:/bin"}
                          ).stdout.decode().strip()


def test_libgit2_and_the_python_walk_agree(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    sub1, sub2 = "1" * 40, "2" * 40
    old = _tree(tmp_path, {
        "a.txt": ("100644", b"a\n"), "link": ("120000", b"a.txt"), "dir/x": ("100644", b"x"),
        "dir/deep/y": ("100644", b"y"), "f": ("100644", b"f"), "exe": ("100644", b"e"),
        "gone": ("100644", b"g"), "sub": ("160000", sub1), "same/s": ("100644", b"s"),
        "t": ("120000", b"x")})
    new = _tree(tmp_path, {
        "a.txt": ("100644", b"a2\n"), "link": ("100644", b"now a file"),
        "dir": ("100644", b"a file where the dir was"), "f/y": ("100644", b"a dir now"),
        "exe": ("100755", b"e"), "n": ("100644", b"new"), "sub": ("160000", sub2),
        "same/s": ("100644", b"s"), "t/u": ("100644", b"link became a dir")})
    repo = pygit2.Repository(str(tmp_path))
    odb = tree_mod.Odb(repo, tmp_path / ".git" / "objects")
    o, n = bytes.fromhex(old), bytes.fromhex(new)
    fast = treediff._diff_in_repo(repo, o, n)
    assert fast == treediff._diff_py(odb, o, n)
    assert fast == treediff.diff_trees(odb, o, n)
    assert ("M", b"link") in fast and ("D", b"dir/deep/y") in fast and ("A", b"t/u") in fast
    assert treediff._diff_in_repo(repo, n, o) == treediff._diff_py(odb, n, o)
    odb.out.abort()
