"""capture/rewrite.py: trees edited path by path and commits copied, with git as the oracle
(git ls-tree, git cat-file, git fsck)."""

from __future__ import annotations

from pathlib import Path

from git_agent.capture import rewrite
from git_agent.gittree import BLOB, LINK
from git_agent.repo import find_worktree
from tests.conftest import run_git


def _blob(root: Path, data: bytes) -> bytes:
    return bytes.fromhex(run_git("hash-object", "-w", "--stdin", cwd=root, input=data).strip())


def test_edit_tree_swaps_files_and_dirs_and_drops_empty_dirs(repo: Path) -> None:
    (repo / "d").mkdir()
    (repo / "d" / "x").write_text("x\n")
    (repo / "f").write_text("f\n")
    run_git("add", "-A", cwd=repo)
    run_git("commit", "-qm", "tree", cwd=repo)
    wt = find_worktree(repo)
    _, odb = rewrite.new_odb(wt, loose=True)
    tree = bytes.fromhex(run_git("rev-parse", "HEAD^{tree}", cwd=repo).strip())
    odd = b"sp ace/\xff\n"
    new = rewrite.edit_tree(odb, tree, {
        b"d": (BLOB, _blob(repo, b"now a file\n")), b"d/x": None,  # a dir becomes a file
        b"f/inner": (BLOB, _blob(repo, b"in\n")), b"f": None,  # a file becomes a dir
        b"README.md": None, odd: (LINK, _blob(repo, b"target")),
    })
    assert new is not None
    out = run_git("ls-tree", "-r", "-z", new.hex(), cwd=repo).split("\0")
    got = {line.split("\t", 1)[1]: line.split()[0] for line in out if line}
    assert got == {"d": "100644", "f/inner": "100644",
                   odd.decode("utf-8", "surrogateescape"): "120000"}
    run_git("fsck", "--no-progress", "--strict", cwd=repo)
    assert rewrite.edit_tree(odb, new, {p: None for p in [b"d", b"f/inner", odd]}) is None


def test_replay_keeps_author_and_message_and_only_the_kept_paths(repo: Path) -> None:
    for name in ("a", "b"):
        (repo / name).write_text(name + "\n")
    run_git("add", "-A", cwd=repo)
    run_git("-c", "user.name=Agent", "-c", "user.email=agent@example.com", "commit", "-qm",
            "agent: both\n\nbody\n\nAgent-Session: s", cwd=repo)
    wt = find_worktree(repo)
    _, odb = rewrite.new_odb(wt)
    onto = bytes.fromhex(run_git("rev-parse", "HEAD~1", cwd=repo).strip())
    one = bytes.fromhex(run_git("rev-parse", "HEAD", cwd=repo).strip())
    tip, _ = rewrite.replay(odb, onto=onto, commits=[one], who=b"U <u@x> 0 +0000",
                           keep=lambda p: p == b"b", note=lambda n: b"(%d left out)" % n)
    odb.out.finish()
    assert run_git("diff", "--name-only", onto.hex(), tip.hex(), cwd=repo) == "b\n"
    assert run_git("log", "-1", "--format=%an|%cn|%B", tip.hex(), cwd=repo) == (
        "Agent|U|agent: both\n\nbody\n\n(1 left out)\n\nAgent-Session: s\n\n")
    # nothing kept: no commit
    same, _ = rewrite.replay(odb, onto=onto, commits=[one], who=b"U <u@x> 0 +0000",
                             keep=lambda p: False)
    assert same == onto
