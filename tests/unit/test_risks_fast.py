"""The risk assessment's shortcuts (issue 13.6: one regex over the table, ASCII prefilters for
.git spellings and config-named paths, the git-dir shape without turning every name of every
directory into bytes) flag exactly what the plain rules flag, on every kind of risky path."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pygit2

from git_agent import beneath, gittree
from git_agent.gittree import BLOB, EXEC, GITLINK, LINK
from git_agent.mergeback import foreign, risks
from git_agent.mergeback.risks import FOREIGN_GIT


def plain_path_risks(path: str) -> list[str]:
    out: list[str] = []
    for rule in risks.RULES:
        if rule.reason not in out and risks._match(rule.pattern, path):
            out.append(rule.reason)
    return out


def plain_foreign_name(path: bytes) -> str | None:
    parts = path.split(b"/")
    if any(gittree.is_dotgit(p) for p in parts):
        return f"{FOREIGN_GIT}: a .git entry (a nested repository or gitfile git follows)"
    if any(gittree.is_dotgitmodules(p) for p in parts):
        return f"{FOREIGN_GIT}: .gitmodules (submodules git clones, fetches and enters)"
    return None


def plain_named_keys(names: list[tuple[bytes, str, bool]], path: bytes) -> list[str]:
    """Every key whose value names path, its directories, or (a whole value) a dir above it."""
    p = path.lower()
    out: list[str] = []
    for value, key, whole in names:
        v = value.lower()
        hit = p == v or v.startswith(p + b"/") or (whole and p.startswith(v + b"/"))
        if hit and key not in out:
            out.append(key)
    return out


def plain_assess(*, path: str, old_mode: int, new_mode: int, old_data: bytes | None,
                 new_data: bytes | None, hooks: list[bytes], configs: list[bytes],
                 names: list[tuple[bytes, str, bool]]) -> list[str]:
    """assess as its docstring says it works, rule by rule, no shortcut."""
    out: list[str] = []
    b = os.fsencode(path)
    for r in (plain_foreign_name(b) if new_mode else None,
              risks.hooks_risk(b, hooks), risks.included_config_risk(b, configs)):
        if r:
            out.append(r)
    keys = plain_named_keys(names, b)
    if keys:
        out.append(risks.NAMED.format(keys=", ".join(keys)))
    if new_mode == LINK and new_data is not None:
        r = risks.symlink_risk(path, new_data)
        if r:
            out.append(r)
    if new_mode == EXEC and old_mode != EXEC:
        out.append("becomes executable" if old_mode else "new executable file")
    if new_mode == GITLINK:
        out.append("submodule commit: code fetched from elsewhere")
    if new_mode in (BLOB, EXEC) and new_data is not None and b"\0" in new_data[:8000]:
        out.append("binary file: cannot be reviewed as text")
    if path.rsplit("/", 1)[-1].lower() == "package.json" and new_mode != LINK:
        out.extend(r for r in risks.package_json_risks(old_data, new_data) if r not in out)
    out.extend(r for r in plain_path_risks(path) if r not in out)
    return out


# Every kind of risky component: the table's patterns, spellings of .git and .gitmodules
# (NTFS short names and trailing dots, HFS ignored code points, case), config-named places.
PARTS = sorted({r.pattern.replace("**/", "").replace("/**", "").replace("*", "x")
                for r in risks.RULES}) + [
    ".git", ".GIT", "git~1", "GIT~1", ".git.", ".git ", ".g\u200cit", ".gitmodules",
    ".GitModules", "gitmod~1", "GI7EBA~1", ".gitmodules ..", "gitx", "digit", "a~b", "src",
    "lib", "x.py", "Makefile", "hooks", "HOOKS", "conf", "tools", "Tools", "bin", "BIN", "SRC",
    "run.sh", "fmt", "package.json",
    "PACKAGE.JSON", "\u00e9t\u00e9", "CLAUDE.md", ".Github", "Workflows"]
HOOKS = [b"tools/hooks"]
CONFIGS = [b"conf/extra.cfg", b"Conf/Other"]
NAMES = [(b"bin/fmt", "core.editor", False), (b"tools", "init.templateDir", True),
         (b"lib/x.py", "alias.x", False), (b"Src/Run.sh", "core.fsmonitor", True)]
MODES = [(BLOB, BLOB), (0, BLOB), (BLOB, 0), (BLOB, EXEC), (0, EXEC), (EXEC, EXEC), (0, LINK),
         (LINK, LINK), (BLOB, GITLINK), (0, GITLINK)]
DATA = [b"x\n", b"bin\0ary", b"/etc/passwd", b"../../out", b"../.git/config", b"ok",
        b'{"scripts": {"a": "b"}}', b"{oops"]


def test_the_fast_assessment_flags_what_the_plain_rules_flag() -> None:
    rnd = random.Random(13)
    paths = sorted({"/".join(rnd.choice(PARTS) for _ in range(rnd.randint(1, 4)))
                    for _ in range(15000)})
    named = risks.ConfigNamed(NAMES)
    differ = []
    hits = 0
    for path in paths:
        old_mode, new_mode = rnd.choice(MODES)
        kw = dict(path=path, old_mode=old_mode, new_mode=new_mode,
                  old_data=rnd.choice(DATA) if old_mode else None,
                  new_data=rnd.choice(DATA) if new_mode else None)
        fast = risks.assess(**kw, hooks=HOOKS, configs=CONFIGS, named=named)  # type: ignore[arg-type]
        plain = plain_assess(**kw, hooks=HOOKS, configs=CONFIGS, names=NAMES)  # type: ignore[arg-type]
        hits += bool(plain)
        if fast != plain:
            differ.append((path, fast, plain))
    assert differ == []
    # the sample reaches every kind: the table, .git/.gitmodules, hooks, configs, named values
    seen = {r for p in paths for r in plain_assess(
        path=p, old_mode=BLOB, new_mode=BLOB, old_data=None, new_data=b"x",
        hooks=HOOKS, configs=CONFIGS, names=NAMES)}
    for kind in (FOREIGN_GIT + ": a .git", FOREIGN_GIT + ": .gitmodules", risks.HOOKS,
                 risks.CONFIG_INCLUDED, risks.NAMED.split("{")[0], "CI workflow"):
        assert any(r.startswith(kind) for r in seen), kind
    assert hits > len(paths) // 2 and len(paths) - hits > 100


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def plain_shaped(root: Path, repo: pygit2.Repository, head: str, paths: list[bytes]) -> set[bytes]:
    """The directories holding one of paths whose names (the branch's tree there and yours)
    make a git dir, by reading every name of both."""
    commit = repo.revparse_single(head)
    assert isinstance(commit, pygit2.Commit)
    out = set()
    dirs = {b"/".join(p.split(b"/")[:i]) for p in paths for i in range(1, p.count(b"/") + 1)}
    for d in dirs:
        names: set[bytes] = set()
        try:
            obj = commit.tree[os.fsdecode(d)]
            if isinstance(obj, pygit2.Tree):
                names |= {e.raw_name for e in obj}
        except KeyError:
            pass
        full = root / os.fsdecode(d)
        if full.is_dir() and not full.is_symlink():
            names |= {os.fsencode(n) for n in os.listdir(full)}
        if gittree.makes_gitdir(names):
            out.add(d)
    return out


def test_the_git_dir_shape_is_found_as_by_reading_every_name(tmp_path: Path) -> None:
    """Directories shaped like a git dir by the branch alone, by your worktree alone, by both
    (HEAD on one side, objects or refs on the other), in any case, beside plain ones."""
    wt = tmp_path / "wt"
    wt.mkdir()
    _git(wt, "init", "-q", "-b", "main")
    _git(wt, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
         "-m", "base")
    rnd = random.Random(5)
    kinds = ["HEAD", "head", "HeAd", "objects", "OBJECTS", "refs", "commondir", "f.txt", "x"]
    ours: list[str] = []
    theirs: list[str] = []
    for i in range(120):
        d = f"d{i % 7}/s{i}"
        for name in rnd.sample(kinds, rnd.randint(1, 3)):
            (ours if rnd.random() < 0.5 else theirs).append(f"{d}/{name}")
        theirs.append(f"{d}/changed.txt")
    for rel in theirs:  # the branch's files: committed on a side branch, then checked out back
        p = wt / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"t\n")
    _git(wt, "checkout", "-q", "-b", "agent")
    _git(wt, "add", "-A")
    _git(wt, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "agent")
    _git(wt, "checkout", "-q", "main")
    for rel in ours:  # yours, untracked
        p = wt / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"o\n")
    repo = pygit2.Repository(str(wt))
    paths = [os.fsencode(p) for p in theirs]
    want = plain_shaped(wt, repo, "agent", paths)
    root_fd = beneath.open_root(wt)
    try:
        got = set(foreign.shaped_dirs(root_fd, lambda: repo, "agent", paths))
        # as review does with a stored assessment: the branch's trees read only where they
        # may name a HEAD or yours hold one
        heads = foreign.head_dirs(repo, "agent", paths)
        kept = set(foreign.shaped_dirs(root_fd, lambda: repo, "agent", paths, heads=heads))
    finally:
        os.close(root_fd)
    assert got == want
    assert kept == want
    assert 10 < len(want) < 110  # both answers occur
