"""What capture brings back, as root and unprivileged through the real CLI, git as the oracle:
git's ignore rules from every source, nothing that makes git find another repository, any
depth, patterns that would backtrack, and the base snapshot's promises to --hide and to files
you cannot read."""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from tests.capture.test_capture import PY_ENV, agent_run, assert_same_tree, git, ls_tree
from tests.conftest import Actor
from tests.unit.test_ignore import _random_tree

pytestmark = pytest.mark.sandbox


# -- docs/security.md: "Capture honours every ignore source git reads"

IGNORES = {
    "README.md": "hello\n",
    ".gitignore": "*.log\n/build/\n!keep.log\ncache-*/\ntracked/\n",
    "sub/.gitignore": "!*.log\n/local\n*.tmp\n",
    "sub/deep/.gitignore": "!important.tmp\n",
    "tracked/in-ignored.txt": "tracked though its dir is ignored\n",
}

SELF_IGNORING = """
set -e
mkdir -p .pytest_cache/v/cache .mypy_cache/3.11 .venv/lib
printf '# Created by pytest automatically.\\n*\\n' > .pytest_cache/.gitignore
echo old > .pytest_cache/v/cache/lastfailed
printf '*\\n' > .mypy_cache/.gitignore; echo {} > .mypy_cache/3.11/x.json
printf '*\\n' > .venv/.gitignore; echo v > .venv/lib/site.py
mkdir -p untracked-dir; echo u > untracked-dir/keep.me
"""

AGENT = """
set -e
echo new > .pytest_cache/v/cache/lastfailed; echo n > .pytest_cache/v/cache/nodeids
echo y > .mypy_cache/3.11/y.json; echo w > .venv/lib/new.py
echo x > a.log; echo k > keep.log; echo s > sub/s.log; echo l > sub/local; echo t > sub/x.tmp
mkdir -p sub/deep build cache-1 d/cache-2; echo i > sub/deep/important.tmp
echo o > sub/deep/other.tmp; echo b > build/out; echo c > cache-1/c; echo c > d/cache-2/c
echo changed >> tracked/in-ignored.txt
echo e > x.excluded; echo g > x.global
mkdir -p gen; printf '*\\n!.gitignore\\n' > gen/.gitignore; echo g > gen/made
printf '!a.log\\n' >> sub/.gitignore
echo u2 > untracked-dir/new.txt
"""


def _setup_ignores(actor: Actor) -> Path:
    repo = actor.make_repo(files=IGNORES)
    actor.run(["git", "add", "-f", "tracked/in-ignored.txt"], cwd=repo, check=True)
    actor.run(["git", "commit", "-qm", "tracked"], cwd=repo, check=True)
    actor.run(["git", "config", "--global", "core.excludesFile", str(actor.home / "ignore")],
              cwd=repo, check=True)
    (actor.home / "ignore").write_text("*.global\n")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("*.excluded\n")
    actor.own(actor.home)
    actor.own(repo)
    actor.run(["sh", "-c", SELF_IGNORING], cwd=repo, check=True)
    assert "pytest_cache" not in git(actor, repo, "status", "--porcelain")
    return repo


def test_capture_honours_every_ignore_source_git_reads(actor: Actor) -> None:
    repo = _setup_ignores(actor)
    agent_run(actor, repo, "t", AGENT)
    assert_same_tree(actor, repo, "agent/t", AGENT)
    tree = "\n".join(ls_tree(actor, repo, "agent/t"))
    for cache in (".pytest_cache", ".mypy_cache", ".venv", "build/", "cache-", "x.global",
                  "x.excluded", "sub/local", "sub/x.tmp", "sub/deep/other.tmp", "gen/made"):
        assert cache not in tree, cache
    for kept in ("sub/s.log", "keep.log", "sub/deep/important.tmp", "gen/.gitignore",
                 "untracked-dir/new.txt"):
        assert kept in tree, kept
    # a tracked file in an ignored directory is git's: its change is kept
    assert git(actor, repo, "show", "agent/t:tracked/in-ignored.txt").endswith("changed\n")


@pytest.mark.parametrize("seed", range(6))
def test_capture_honours_ignore_sources_on_generated_trees(actor: Actor, seed: int) -> None:
    """Random ignore files (negations, anchors, dir-only, **, brackets) in the worktree
    (committed, every other one) and written by the agent (the rest), info/exclude and
    core.excludesFile; the agent writes random paths. git add -A on a copy is the oracle."""
    rng = random.Random(seed)
    files, paths = _random_tree(rng)
    repo = actor.make_repo(files={})
    ignores = sorted(k for k in files if k.endswith(".gitignore"))
    lower = ignores[::2]
    for rel in lower:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(files[rel])
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text(files[".git/info/exclude"])
    (actor.home / "global-ignore").write_text(files["GLOBAL"])
    (repo / "base.txt").write_text("base\n")
    actor.own(repo)
    actor.own(actor.home)
    actor.run(["git", "config", "--global", "core.excludesFile",
               str(actor.home / "global-ignore")], cwd=repo, check=True)
    actor.run(["git", "add", "-f", "base.txt", *lower], cwd=repo, check=True)
    actor.run(["git", "commit", "-qm", "lower"], cwd=repo, check=True)
    writes = [(rel, files[rel]) for rel in ignores[1::2]] + [(p, p + "\n") for p in paths]
    script = ("python3 -c 'import json, os, sys\n"
              "for p, c in json.loads(sys.argv[1]):\n"
              "    os.makedirs(os.path.dirname(p) or \".\", exist_ok=True)\n"
              "    open(p, \"w\").write(c)\n' " + shlex.quote(json.dumps(writes)))
    agent_run(actor, repo, "t", script)
    assert_same_tree(actor, repo, "agent/t", script)


@pytest.mark.timeout(120)
def test_capture_of_patterns_that_backtrack_is_linear(actor: Actor) -> None:
    """12.2: on a backtracking matcher this pattern against 60 a's runs for hours. (git
    2.39's own `git status` hangs on this tree too, so git is the oracle only for the
    short names here; the long ones match no pattern: they must be captured.)"""
    repo = actor.make_repo(files={".gitignore": "*a*a*a*a*a*a*a*a*a*a*a*a*b\n"})
    script = ("set -e; for n in 1 2 3 4 5 6 7 8; do mkdir -p d$n; "
              f"echo x > d$n/{'a' * 60}$n; echo x > {'a' * 60}$n; done; "
              f"echo y > {'a' * 12}b; echo z > {'a' * 11}b")
    agent_run(actor, repo, "t", script)
    names = {x.split("\t", 1)[1] for x in ls_tree(actor, repo, "agent/t")}
    for n in range(1, 9):
        assert f"d{n}/{'a' * 60}{n}" in names and f"{'a' * 60}{n}" in names
    for short in ("a" * 12 + "b", "a" * 11 + "b"):
        ignored = actor.run(["git", "check-ignore", "-q", "--no-index", short],
                            cwd=repo).returncode == 0
        assert (short not in names) == ignored, short
    assert "a" * 12 + "b" not in names


# -- docs/security.md: "Nothing a session brings makes git find another repository"

GITDIR = """
set -e
mkdir -p src/objects/info src/refs/heads sub .GIT
echo 'ref: refs/heads/main' > src/HEAD
printf '[core]\\n\\tbare = true\\n\\tfsmonitor = "touch {marker}; false"\\n' > src/config
echo x > src/objects/info/packs; echo 0 > src/refs/heads/main
echo 'gitdir: /tmp/elsewhere' > sub/.git
printf '[core]\\n\\tfsmonitor = "touch {marker}"\\n' > .GIT/config
printf '[submodule "s"]\\n\\tpath = s\\n\\turl = ./elsewhere\\n' > .gitmodules
echo fine > src/fine.txt
mkdir -p wt Mixed/OBJECTS; echo 'ref: refs/heads/main' > wt/HEAD; echo ../src > wt/commondir
echo 'ref: refs/heads/main' > Mixed/Head; echo x > Mixed/OBJECTS/x; echo ok > Mixed/keep
"""


def _every_dir_is_the_users(actor: Actor, repo: Path, rev: str, marker: Path) -> None:
    """git as the oracle: check the branch out, then from every directory of it git finds
    the user's repository, and no command planted in a config ran."""
    wt = actor.base / "checkout"
    actor.git("worktree", "add", "-q", "--detach", str(wt), rev, cwd=repo)
    want = actor.git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=wt).strip()
    for d, _, _ in os.walk(wt):
        got = actor.git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=d)
        assert got.strip() == want, d
        actor.run(["git", "status", "--porcelain"], cwd=d, check=True)
    assert not marker.exists()


@pytest.mark.parametrize("how", ["files", "committed src", "committed .gitmodules"])
def test_nothing_a_session_brings_makes_git_find_another_repository(actor: Actor,
                                                                    how: str) -> None:
    repo = actor.make_repo(files={"README.md": "hello\n", "src/app.py": "x\n"})
    marker = actor.base / "ran"
    script = GITDIR.format(marker=marker)
    if how != "files":  # some of the entries in a commit of the agent's own, then imported
        script += (f"git add -f {how.split()[1]}; "
                   "git -c core.fsmonitor=false commit -qm planted\n")
    p = agent_run(actor, repo, "t", script)
    names = [x.split("\t", 1)[1] for x in ls_tree(actor, repo, "agent/t")]
    assert "src/fine.txt" in names
    for bad in ("src/HEAD", "src/config", "src/objects/info/packs", "src/refs/heads/main",
                "sub/.git", ".GIT/config", ".gitmodules", "wt/HEAD", "wt/commondir",
                "Mixed/Head", "Mixed/OBJECTS/x"):
        assert bad not in names, bad
    assert "Mixed/keep" in names
    warned = [line for line in p.stderr.splitlines() if "left out" in line]
    for bad in ("src/HEAD", "src/objects", "src/refs", "sub/.git", ".GIT", ".gitmodules",
                "wt/HEAD", "wt/commondir", "Mixed/Head", "Mixed/OBJECTS"):
        assert sum(f"left out {bad}:" in line for line in warned) == 1, (bad, p.stderr)
    if how != "files":
        assert "squashed" in p.stderr
    _every_dir_is_the_users(actor, repo, "agent/t", marker)
    actor.run(["git", "fsck", "--strict"], cwd=repo, check=True)


def test_the_users_own_repository_shapes_are_kept(actor: Actor) -> None:
    """A fixture repository the user committed stays; only the session's additions go."""
    repo = actor.make_repo(files={"fx/HEAD": "ref: refs/heads/main\n", "fx/refs/x": "0\n",
                                  "fx/description": "d\n"})
    p = agent_run(actor, repo, "t", "set -e; echo new > fx/description; echo 1 > fx/refs/y")
    names = [x.split("\t", 1)[1] for x in ls_tree(actor, repo, "agent/t")]
    assert "fx/HEAD" in names and "fx/refs/x" in names
    assert git(actor, repo, "show", "agent/t:fx/description") == "new\n"
    assert "fx/refs/y" not in names and "left out fx/refs:" in p.stderr


def test_a_copy_of_the_users_repository_shape_is_not_imported(actor: Actor) -> None:
    """The agent builds a repository of objects the user has (a fixture's HEAD and refs/,
    a copy of docs/ as objects/) beside a config of its own, and commits it: no commit of
    the branch holds it."""
    repo = actor.make_repo(files={"fx/HEAD": "ref: refs/heads/main\n", "fx/refs/x": "0\n",
                                  "docs/a.md": "doc\n"})
    marker = actor.base / "ran"
    script = ("set -e; mkdir evil; cp fx/HEAD evil/; cp -r fx/refs evil/; cp -r docs "
              f"evil/objects; printf '[core]\\n\\tfsmonitor = \"touch {marker}\"\\n' "
              "> evil/config; echo ok > kept.txt; git add evil kept.txt; "
              "git -c core.fsmonitor=false commit -qm copy")
    p = agent_run(actor, repo, "t", script)
    assert "squashed" in p.stderr and git(actor, repo, "show", "agent/t:kept.txt") == "ok\n"
    for rev in git(actor, repo, "rev-list", "HEAD..agent/t").split():
        names = [x.split("\t", 1)[1] for x in ls_tree(actor, repo, rev)]
        assert not any(n.startswith("evil/") for n in names), (rev, names)
    assert "left out evil/HEAD:" in p.stderr
    _every_dir_is_the_users(actor, repo, "agent/t", marker)


def test_a_new_gitmodules_is_not_imported_whatever_commit_holds_its_bytes(actor: Actor) -> None:
    """The agent commits docs/sample.txt, then a .gitmodules (and a gitlink) of the same bytes:
    capture imports the oldest commit first, but a .gitmodules is known only when your store
    has its blob, never because an earlier commit of the same history brought it, so no
    commit of the branch holds one. (The remote's bundle is walked tip first: its test,
    tests/remote/test_bundle.py, puts the .gitmodules in the older commit.)"""
    repo = actor.make_repo(files={"README.md": "hello\n"})
    mods = '[submodule "lib"]\\n\\tpath = lib\\n\\turl = https://attacker.invalid/lib\\n'
    script = (f"set -e; mkdir docs; printf '{mods}' > docs/sample.txt; git add docs; "
              f"git commit -qm sample; printf '{mods}' > .gitmodules; git add .gitmodules; "
              "git update-index --add --cacheinfo 160000,$(git rev-parse HEAD~),lib; "
              "git commit -qm vendor")
    p = agent_run(actor, repo, "t", script)
    assert "squashed" in p.stderr, p.stderr
    for rev in git(actor, repo, "rev-list", "HEAD..agent/t").split():
        names = [x.split("\t", 1)[1] for x in ls_tree(actor, repo, rev)]
        assert ".gitmodules" not in names and "lib" not in names, (rev, names)
    assert "docs/sample.txt" in [x.split("\t", 1)[1] for x in ls_tree(actor, repo, "agent/t")]


FIXTURE = {"README.md": "hello\n", "tests/fx/HEAD": "ref: refs/heads/main\n",
           "tests/fx/config": "[core]\n\tbare = true\n", "tests/fx/objects/info/k": "",
           "tests/fx/refs/heads/k": ""}


@pytest.mark.parametrize("where", ["fx at a new path", "its parent dir at a new path"])
def test_a_known_repository_shaped_tree_at_a_new_path_is_not_imported(actor: Actor,
                                                                      where: str) -> None:
    """The agent commits a tree your store already has (your committed fixture, or the dir
    holding it) at a new path, then commits on top: known or not, a tree a new commit reaches
    at a new path is checked for the shape, so no commit of agent/t holds it."""
    repo = actor.make_repo(files=FIXTURE)
    src = "HEAD:tests/fx" if where.startswith("fx") else "HEAD:tests"
    script = ("set -e; t=$(git rev-parse " + src + "); "
              "{ git ls-tree HEAD; printf '040000 tree %s\\tevil\\n' $t; } > /tmp/t; "
              "c=$(git commit-tree $(git mktree < /tmp/t) -p HEAD -m x); "
              "git update-ref HEAD $c; echo b > b; git add b; git commit -qm b")
    p = agent_run(actor, repo, "t", script)
    assert "squashed" in p.stderr, p.stderr
    revs = git(actor, repo, "rev-list", "HEAD..agent/t").split()
    assert revs
    for rev in revs:
        names = [x.split("\t", 1)[1] for x in ls_tree(actor, repo, rev)]
        assert not any(n.startswith("evil/") for n in names), (rev, names)
    assert git(actor, repo, "show", "agent/t:b") == "b\n"


def test_a_known_repository_shape_at_its_own_path_keeps_the_history(actor: Actor) -> None:
    """Your fixture where it was (the agent's commits change other files) is no new path:
    the agent's commits are imported as they are."""
    repo = actor.make_repo(files=FIXTURE)
    p = agent_run(actor, repo, "t", "set -e; echo 1 > a; git add a; git commit -qm one; "
                  "echo 2 > tests/b; git add tests/b; git commit -qm two")
    assert "squashed" not in p.stderr, p.stderr
    subjects = git(actor, repo, "log", "--format=%s", "HEAD..agent/t").split()
    assert subjects[-2:] == ["two", "one"], subjects
    assert git(actor, repo, "show", "agent/t:tests/fx/HEAD") == "ref: refs/heads/main\n"


def test_warnings_quote_names_as_git_does(actor: Actor) -> None:
    repo = actor.make_repo()
    p = agent_run(actor, repo, "t", "mkdir -p \"$(printf 'a\\033[2Kb')\"; "
                  "echo x > \"$(printf 'a\\033[2Kb')/.GIT\"")
    assert 'left out "a\\033[2Kb/.GIT":' in p.stderr
    assert "\033" not in p.stderr


# -- 12.4: any depth

def test_a_very_deep_tree_captures(actor: Actor) -> None:
    repo = actor.make_repo()
    deep = "/".join(["d"] * 1500)
    script = f"set -e; mkdir -p {deep}; echo bottom > {deep}/f"
    try:
        p = agent_run(actor, repo, "t", script)
        assert "RecursionError" not in p.stderr
        assert git(actor, repo, "show", f"agent/t:{deep}/f") == "bottom\n"
        assert_same_tree(actor, repo, "agent/t", script)
    finally:  # shutil.rmtree (the suite's clean-up) recurses on depth
        subprocess.run(["rm", "-rf", str(actor.base)], check=True)


# -- docs/security.md: "--hide: a hidden file's content reaches nothing the agent can read"

SCAN = r"""
import os, subprocess, sys, zlib
secrets = [s[::-1].encode() for s in sys.argv[1:]]  # given reversed
found = []
for d, _, files in os.walk(".git"):
    for f in files:
        p = os.path.join(d, f)
        try:
            data = open(p, "rb").read()
        except OSError:
            continue
        try:
            data += zlib.decompress(data)
        except zlib.error:
            pass
        found += [p for s in secrets if s in data]
out = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"],
                     capture_output=True).stdout
found += ["cat-file"] if any(s in out for s in secrets) else []
print("FOUND" if found else "CLEAN", found)
"""

def _run_after_base(actor: Actor, repo: Path, args: list[str], script: str
                    ) -> subprocess.CompletedProcess[str]:
    """`git agent run ARGS -- sh -c SCRIPT`, the script held on a `read` of its stdin until
    refs/agent-base/t exists on the host (the snapshot is written): only then can a scan
    inside find what the snapshot wrote. (A poll from inside would not do: the overlay keeps
    a name it looked up and did not find as missing.)"""
    argv = actor._with_env([*_cli(), "run", *args, "-s", "t", "--", "sh", "-c",
                            "read go; " + script], PY_ENV)
    p = subprocess.Popen(argv, cwd=repo, env={**actor.env, **PY_ENV}, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while actor.run(["git", "rev-parse", "-q", "--verify", "refs/agent-base/t"],
                        cwd=repo).returncode != 0:
            assert time.monotonic() < deadline and p.poll() is None, "no base snapshot"
            time.sleep(0.05)
        out, err = p.communicate("go\n", timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def test_hidden_content_reaches_nothing_the_agent_can_read(actor: Actor) -> None:
    repo = actor.make_repo(files={"README.md": "hello\n", "config.yml": "token: public\n"})
    (repo / "config.yml").write_text("token: SECRET-EDIT-c0ffee\n")  # uncommitted edit
    (repo / ".env").write_text("KEY=SECRET-UNTRACKED-f00d\n")  # untracked
    (repo / "keys").mkdir()
    (repo / "keys" / "id").write_text("SECRET-IN-DIR-beef\n")
    (repo / "private").mkdir()  # hidden by a path through a symlinked dir
    (repo / "private" / "token").write_text("SECRET-VIA-LINK-face\n")
    (repo / "alias").symlink_to("private")
    actor.own(repo)
    secrets = ["SECRET-EDIT-c0ffee", "SECRET-UNTRACKED-f00d", "SECRET-IN-DIR-beef",
               "SECRET-VIA-LINK-face"]
    # reversed on the command line: the run records it (its commit message)
    scan = ("python3 -c '" + SCAN.replace("'", "'\\''") + "' "
            + " ".join(s[::-1] for s in secrets) + "; echo agent > new.txt")
    hide = ["--hide", "config.yml", "--hide", ".env", "--hide", "keys", "--hide", "alias/token"]
    for _run in range(2):  # during the run, then the next run (the first run's base ref)
        p = _run_after_base(actor, repo, hide, scan)
        assert "CLEAN" in p.stdout, p.stdout + p.stderr
    base = git(actor, repo, "rev-parse", "refs/agent-base/t").strip()
    assert git(actor, repo, "show", f"{base}:config.yml") == "token: public\n"
    names = [x.split("\t", 1)[1] for x in ls_tree(actor, repo, base)]
    assert ".env" not in names and "keys/id" not in names
    # and the user's own repository holds none of it either
    out = actor.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo).stdout
    assert not any(s in out for s in secrets)


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "git_agent"]


# -- 11.6: a file you cannot read

def test_a_file_you_cannot_read_is_left_out_of_the_base(actor: Actor) -> None:
    if actor.is_root:
        pytest.skip("root reads every file: the case is a user's worktree with root's file")
    repo = actor.make_repo()
    locked = repo / "docker-owned.db"
    locked.write_text("root's data\n")  # made by root (the test runs as root), mode 0600
    os.chmod(locked, 0o600)
    assert os.stat(locked).st_uid == 0
    (repo / "pgdata").mkdir(mode=0o700)  # a directory of root's, as a database image leaves
    (repo / "pgdata" / "base").write_text("rows\n")
    (repo / "mine.txt").write_text("untracked work\n")  # owned by the user: in the base
    actor.own(repo / "mine.txt")
    p = actor.run([*_cli(), "run", "-s", "t", "--", "sh", "-c",
                   "cat docker-owned.db && echo READ; ls pgdata && echo LISTED; "
                   "echo agent > new.txt"], cwd=repo, env=PY_ENV, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "READ" not in p.stdout and "LISTED" not in p.stdout, p.stdout
    ours = [line for line in p.stderr.splitlines() if line.startswith("git agent: warning:")]
    assert sum("docker-owned.db" in line and "left" in line for line in ours) == 1, p.stderr
    assert sum("pgdata/" in line and "left" in line for line in ours) == 1, p.stderr
    base = git(actor, repo, "rev-parse", "refs/agent-base/t").strip()
    names = "\n".join(ls_tree(actor, repo, base))
    assert "docker-owned.db" not in names and "pgdata" not in names and "mine.txt" in names
    assert git(actor, repo, "show", "agent/t:new.txt") == "agent\n"
