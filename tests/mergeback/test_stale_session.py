"""security.md, "A session never outlives its repository": a repository deleted and made anew at
the same path does not continue the old one's sessions (their worktree overlay, their .git with
its hooks, their agent home); every verb says the session is stale and how to drop it, and drop
works. git is the oracle for what the new repository holds."""

from __future__ import annotations

import json

from tests.mergeback.conftest import Work

PLANT = ("echo 'echo PLANTED_HOME' >> ~/.bashrc && "
         "printf '#!/bin/sh\\necho PLANTED_HOOK\\n' > .git/hooks/pre-commit && "
         "chmod +x .git/hooks/pre-commit && echo planted > planted.txt")
LOOK = ("cat planted.txt 2>/dev/null; cat ~/.bashrc 2>/dev/null; "
        "git commit -q --allow-empty -m probe 2>&1; echo looked")
OURS = ("refs/agent-id", "refs/heads/agent/", "refs/agent-base/")


def _state(work: Work) -> dict[str, str]:
    """The user's own repository state, as git reports it, and its config file's bytes."""
    refs = "\n".join(line for line in work.git("for-each-ref", "--format=%(refname) %(objectname)")
                     .splitlines() if not line.startswith(OURS))
    return {"refs": refs, "head": work.git("symbolic-ref", "HEAD"),
            "index": work.git("ls-files", "-s", "--debug"),
            "config": (work.root / ".git/config").read_text(),
            "status": work.git("status", "--porcelain", "--ignored")}


def _new_repo_at_the_same_path(work: Work) -> None:
    work.actor.run(["sh", "-c", f"rm -rf '{work.root}' && mkdir '{work.root}' && cd '{work.root}'"
                    " && git init -q -b main && echo Y > b && git add b && git commit -qm Y"],
                   cwd=work.actor.base, check=True)


def test_a_session_never_outlives_its_repository(work: Work) -> None:
    work.run(PLANT)
    ours = work.git("rev-parse", "refs/agent-id").strip()
    _new_repo_at_the_same_path(work)
    assert work.git("for-each-ref").count("refs/") == 1  # git: an unrelated repository
    before = _state(work)
    hint = "git agent drop --force s"
    for verb in (["run", "-s", "s", "--net", "none", "--", "sh", "-c", LOOK],
                 ["review", "s"], ["apply", "--yes", "s"], ["apply", "-i", "s"]):
        p = work.agent(*verb, input="y\n")
        assert p.returncode != 0, (verb, p.stdout, p.stderr)
        assert "looked" not in p.stdout and "PLANTED" not in p.stdout + p.stderr, verb
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and "stale" in lines[0] and hint in lines[0], (verb, p.stderr)
    p = work.ok("list")
    assert "stale" in p.stdout and hint in p.stderr
    rows = json.loads(work.ok("list", "--json").stdout)
    assert [(r["name"], r["stale"], r["head"]) for r in rows] == [("s", True, None)]
    assert _state(work) == before  # nothing of the user's touched; no id written by refusals
    assert work.git("for-each-ref", "refs/agent-id") == ""

    p = work.ok("drop", "--force", "s")
    assert "dropped stale session 's'" in p.stderr
    assert work.ok("list", "--json").stdout.strip() == "[]"
    # the name is free again, and its new session starts from this repository alone
    p = work.ok("run", "-s", "s", "--net", "none", "--", "sh", "-c", LOOK)
    assert "looked" in p.stdout and "PLANTED" not in p.stdout + p.stderr, p.stdout
    assert _state(work) == before
    new = work.git("rev-parse", "refs/agent-id").strip()
    assert new != ours and work.git("cat-file", "-t", new).strip() == "blob"
    assert not (work.root / "planted.txt").exists()


def test_a_session_follows_its_repository_copied_back_whole(work: Work) -> None:
    """A repository restored from a copy of its whole folder (a backup, `cp -a`, a new inode)
    is the same repository: its sessions continue."""
    work.run("echo agent > made.txt")
    root = work.root
    work.actor.run(["sh", "-c", f"cp -a '{root}' '{root}.bak' && rm -rf '{root}' && "
                    f"mv '{root}.bak' '{root}'"], cwd=work.actor.base, check=True)
    assert work.review_paths() == ["made.txt"]
    work.run("cat made.txt && echo more >> made.txt")
    assert work.review_paths() == ["made.txt"]
    rows = json.loads(work.ok("list", "--json").stdout)
    assert [(r["name"], r["stale"]) for r in rows] == [("s", False)]
