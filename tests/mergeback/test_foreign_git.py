"""security.md, "What comes back", rule 1: nothing a session brings may make git discover, from
any directory of the worktree, a repository or config other than yours.

The session branches here are crafted with git plumbing (hash-object, mktree, commit-tree,
update-ref on agent/s), as a fetched or hand-made branch could be: capture would keep such
entries out, a branch need not come from capture. Git is the oracle: `git rev-parse
--git-dir` from every directory of the worktree, and a core.fsmonitor command that would leave
a marker file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from git_agent.mergeback.risks import FOREIGN_GIT
from tests.mergeback.conftest import Work

Tree = dict[str, "Tree | tuple[str, str]"]  # name -> subtree, or (mode, oid)


def _mktree(work: Work, tree: Tree) -> str:
    """The tree object for a nested dict, bottom-up with an explicit stack."""
    order: list[Tree] = []
    stack = [tree]
    while stack:
        t = stack.pop()
        order.append(t)
        stack.extend(v for v in t.values() if isinstance(v, dict))
    oids: dict[int, str] = {}
    for t in reversed(order):  # children before parents
        lines = []
        for name, v in t.items():
            if isinstance(v, dict):
                lines.append(f"040000 tree {oids[id(v)]}\t{name}")
            else:
                kind = "commit" if v[0] == "160000" else "blob"
                lines.append(f"{v[0]} {kind} {v[1]}\t{name}")
        p = work.actor.run(["git", "mktree", "-z"], cwd=work.root, input="\0".join(lines) + "\0",
                           check=True)
        oids[id(t)] = p.stdout.strip()
    return oids[id(tree)]


def craft(work: Work, files: dict[str, bytes | tuple[str, bytes]], session: str = "s") -> None:
    """Put files (path -> content, or (mode, content)) on top of agent/SESSION's tree and make
    that the branch, a commit with the session's Agent-Base trailer."""
    head = work.git("rev-parse", f"refs/heads/agent/{session}").strip()
    base = work.git("rev-parse", f"refs/agent-base/{session}").strip()
    root: Tree = {}
    listing = work.actor.run(["git", "ls-tree", "-r", "-z", "--full-tree", head], cwd=work.root,
                             check=True).stdout
    entries = {}
    for rec in listing.split("\0"):
        if rec:
            meta, path = rec.split("\t", 1)
            mode, _, oid = meta.split()
            entries[path] = (mode, oid)
    for path, content in files.items():
        mode, data = content if isinstance(content, tuple) else ("100644", content)
        p = work.actor.run(["git", "hash-object", "-w", "--stdin"], cwd=work.root,
                           input=data, check=True)
        entries[path] = (mode, p.stdout.strip())
    for path, leaf in entries.items():
        *dirs, name = path.split("/")
        here = root
        for d in dirs:
            here = here.setdefault(d, {})  # type: ignore[assignment]
        here[name] = leaf
    tree = _mktree(work, root)
    msg = f"crafted\n\nAgent-Session: {session}\nAgent-Base: {base}\n"
    commit = work.actor.run(["git", "commit-tree", tree, "-p", head, "-F", "-"], cwd=work.root,
                            input=msg, check=True).stdout.strip()
    work.git("update-ref", f"refs/heads/agent/{session}", commit)


def every_dir(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        out.append(Path(dirpath))
    return out


def git_dirs_seen(work: Work) -> set[str]:
    """What `git rev-parse --absolute-git-dir` names from every directory of the worktree."""
    return {work.actor.run(["git", "rev-parse", "--absolute-git-dir"], cwd=d).stdout.strip()
            for d in every_dir(work.root)}


def fsmonitor_config(marker: Path) -> bytes:
    return f"[core]\n\tfsmonitor = touch {marker}\n\tbare = false\n".encode()


def risks_of(work: Work) -> dict[str, list[str]]:
    files = json.loads(work.ok("review", "s", "--json").stdout)["files"]
    return {f["path"]: f["risks"] for f in files}


def test_a_dir_shaped_like_a_git_dir_is_the_highest_risk_and_never_applied(work: Work) -> None:
    marker = work.actor.base / "fsmonitor-ran"
    work.run("echo more >> README.md")
    craft(work, {"src/HEAD": b"ref: refs/heads/main\n", "src/objects/info/packs": b"",
                 "src/refs/heads/main": b"", "src/config": fsmonitor_config(marker)})
    # the attack is real: checked out as is, git takes src/ for a repository
    probe = work.actor.base / "probe"
    probe.mkdir()
    work.actor.own(probe)
    work.actor.run(["sh", "-c", f"git archive agent/s | tar -x -C {probe}"], cwd=work.root,
                   check=True)
    assert work.actor.run(["git", "rev-parse", "--git-dir"], cwd=probe / "src").stdout.strip() \
        == "."
    risks = risks_of(work)
    for path in ("src/HEAD", "src/objects/info/packs", "src/refs/heads/main", "src/config"):
        assert risks[path][0].startswith(FOREIGN_GIT), (path, risks[path])
    assert not any(r.startswith(FOREIGN_GIT) for r in risks["README.md"])
    text = work.ok("review", "s").stdout
    first = next(line for line in text.splitlines() if line.startswith("  ! "))
    assert FOREIGN_GIT in first and "src/" in first
    before = work.snapshot()
    for args in (("apply", "s"), ("apply", "--yes", "s"), ("apply", "--yes", "s", "--", "src"),
                 ("apply", "-y", "s", "--", "src/config")):
        p = work.agent(*args)
        assert p.returncode != 0, (args, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "refusing to apply" in lines[0] and FOREIGN_GIT in lines[0]
        assert work.snapshot() == before
    # what is not part of it applies, and git still finds only your repository everywhere
    work.ok("apply", "s", "--", "README.md")
    assert (work.root / "README.md").read_text() == "hello\nmore\n"
    assert git_dirs_seen(work) == {str(work.root / ".git")}
    work.git("status")
    assert not marker.exists()


@pytest.mark.parametrize("path", ["sub/.git", ".GIT/config", "git~1/config", ".gitmodules",
                                  "lib/.gitmodules", "deep/er/.Git/HEAD"])
def test_spellings_of_dotgit_and_gitmodules_are_refused(work: Work, path: str) -> None:
    marker = work.actor.base / "fsmonitor-ran"
    work.run("echo x > plain.txt")
    data = (b"gitdir: ../evil\n" if path.endswith(".git") else
            b'[submodule "x"]\n\tpath = x\n\turl = ../evil\n' if "gitmodules" in path else
            fsmonitor_config(marker))
    craft(work, {path: data})
    assert risks_of(work)[path][0].startswith(FOREIGN_GIT)
    before = work.snapshot()
    p = work.agent("apply", "--yes", "s")
    assert p.returncode != 0 and "refusing to apply" in p.stderr and path in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert work.snapshot() == before
    work.git("status")
    assert git_dirs_seen(work) == {str(work.root / ".git")} and not marker.exists()


def test_your_own_dirs_complete_the_shape(work: Work) -> None:
    """The final state is judged: objects/ and refs/ of yours plus the session's HEAD."""
    work.run("echo x > plain.txt")
    # yours, made after the run: only your worktree has them, not the session's branch
    work.sh("mkdir -p data/objects data/refs && echo 1 > data/objects/a && echo 2 > data/refs/b")
    craft(work, {"data/HEAD": b"ref: refs/heads/main\n"})
    assert risks_of(work)["data/HEAD"][0].startswith(FOREIGN_GIT + ": data/")
    p = work.agent("apply", "--yes", "s")
    assert p.returncode != 0 and "data/HEAD" in p.stderr
    assert not (work.root / "data/HEAD").exists()


def test_after_an_apply_git_finds_only_your_repository(work: Work) -> None:
    """Near misses apply (with --yes where risky), and git run from every directory of the
    tree names your git dir; the fsmonitor marker never appears. The top directory may hold
    HEAD, objects and refs: your .git beside them is what git finds there."""
    marker = work.actor.base / "fsmonitor-ran"
    work.run("echo x > plain.txt")
    craft(work, {"HEAD": b"ref: refs/heads/main\n", "config": fsmonitor_config(marker),
                 "docs/HEAD": b"ref: refs/heads/main\n", "objects/x": b"", "refs/y": b"",
                 "git/config": fsmonitor_config(marker), "x.git/config": fsmonitor_config(marker),
                 "lib/HEAD.txt": b"", "lib/objects.txt": b"", "lib/refs.d/x": b""})
    assert not any(r.startswith(FOREIGN_GIT) for rs in risks_of(work).values() for r in rs)
    work.ok("apply", "--yes", "s")
    assert (work.root / "docs/HEAD").exists() and (work.root / "git/config").exists()
    assert git_dirs_seen(work) == {str(work.root / ".git")}
    for d in every_dir(work.root):
        work.actor.run(["git", "status"], cwd=d, check=True)
    assert not marker.exists()


def test_your_own_head_completes_the_shape(work: Work) -> None:
    """The mirror case: HEAD is yours, objects/ and refs/ come from the session (the branch's
    tree names no HEAD there: your worktree's names are read for it)."""
    work.run("echo x > plain.txt")
    work.sh("mkdir -p data && echo 'ref: refs/heads/main' > data/HEAD")
    craft(work, {"data/objects/a": b"1\n", "data/refs/b": b"2\n"})
    assert risks_of(work)["data/objects/a"][0].startswith(FOREIGN_GIT + ": data/")
    p = work.agent("apply", "--yes", "s")
    assert p.returncode != 0 and "data/objects/a" in p.stderr
    assert not (work.root / "data/objects").exists()


def test_a_lone_head_and_config_is_no_repository_and_no_later_session_completes_it(
        work: Work) -> None:
    """security.md, rule "Nothing a session brings makes git find another repository": HEAD
    and config alone are no git dir to git (it needs refs/, and objects/ or commondir), so the
    shape rule lets them through; git itself is the oracle (from every directory it names your
    repository, the config's fsmonitor never runs). What would complete the shape later is
    judged then: a later session's objects/ and refs/ beside your HEAD are left out of its
    capture (and refused at apply: test_your_own_head_completes_the_shape)."""
    marker = work.actor.base / "fsmonitor-ran"
    cfg = fsmonitor_config(marker).decode().replace("\n", "\\n").replace("\t", "\\t")
    work.run(f"mkdir -p data && echo 'ref: refs/heads/main' > data/HEAD && printf '{cfg}' > "
             "data/config")
    assert not any(r.startswith(FOREIGN_GIT) for rs in risks_of(work).values() for r in rs)
    work.ok("apply", "--yes", "s")
    assert (work.root / "data/config").read_bytes() == fsmonitor_config(marker)
    assert git_dirs_seen(work) == {str(work.root / ".git")}
    work.actor.run(["git", "status"], cwd=work.root / "data", check=True)
    assert not marker.exists()
    work.run("mkdir -p data/objects data/refs && echo 1 > data/objects/a && "
             "echo 2 > data/refs/b && echo x > plain.txt", session="t")
    listed = json.loads(work.ok("review", "t", "--json").stdout)["files"]
    assert [f["path"] for f in listed] == ["plain.txt"]
    assert git_dirs_seen(work) == {str(work.root / ".git")}
