"""The agent's history: `apply --commit` lands it as commits (cherry-pick style), and after any
apply agent/S holds only the pending work, its old self on refs/agent-history/S. git is the
oracle (git log, git cat-file, git status --porcelain, the reflog)."""

from __future__ import annotations

from tests.mergeback.conftest import Work

AGENT = "git -c user.name=Agent -c user.email=agent@example.com"
WORK = (f"echo a2 >> README.md && {AGENT} commit -qam 'agent: readme' && "
        f"echo u2 >> src/util.py && {AGENT} commit -qam 'agent: util' && "
        "echo loose > loose.txt")


def log(work: Work, rev: str, fmt: str = "%s") -> list[str]:
    return work.git("log", f"--format={fmt}", rev).splitlines()


def pending(work: Work, s: str = "s") -> list[str]:
    return log(work, f"refs/agent-base/{s}..agent/{s}")


def test_apply_commit_lands_the_agent_commits_with_their_authors(work: Work) -> None:
    work.run(WORK)
    before = work.git("rev-parse", "agent/s").strip()
    head = work.git("rev-parse", "HEAD").strip()
    p = work.ok("apply", "--commit", "s")
    assert "landed 3 commits on main" in p.stderr
    new = log(work, f"{head}..HEAD", "%an|%cn|%s")
    assert new[1:] == ["Agent|Test User|agent: util", "Agent|Test User|agent: readme"]
    assert new[0].startswith("Test User|Test User|git agent: sh -c")  # the uncommitted part
    # index and worktree as cherry-pick leaves them: clean, holding the commits' content
    assert work.git("status", "--porcelain") == ""
    assert work.git("show", "HEAD:loose.txt") == "loose\n"
    assert (work.root / "src/util.py").read_text().endswith("u2\n")
    # nothing pending: agent/s is its base; what it was is on record
    assert work.git("rev-parse", "agent/s") == work.git("rev-parse", "refs/agent-base/s")
    assert pending(work) == []
    assert work.git("rev-parse", "refs/agent-history/s^1").strip() == before
    assert "pending work only" in work.git("reflog", "show", "agent/s")
    assert "no changes" in work.ok("review", "s").stderr
    work.ok("drop", "-f", "s")
    assert work.git("for-each-ref", "refs/agent-history/", "refs/heads/agent/") == ""


def test_apply_commit_refuses_a_dirty_index_or_paths_it_writes(work: Work) -> None:
    work.run(WORK)
    tip = work.git("rev-parse", "agent/s")
    work.sh("echo staged >> docs/c.md && git add docs/c.md")
    state = work.index_and_head()
    p = work.agent("apply", "--commit", "s")
    assert p.returncode == 1 and "index has staged changes" in p.stderr
    assert work.index_and_head() == state and work.git("rev-parse", "agent/s") == tip
    work.sh("git restore --staged docs/c.md && echo mine >> src/util.py")
    state = work.index_and_head()
    p = work.agent("apply", "--commit", "s")
    assert p.returncode == 1 and "src/util.py" in p.stderr and "nothing was landed" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert work.index_and_head() == state and work.git("rev-parse", "agent/s") == tip
    assert work.git("status", "--porcelain") == " M docs/c.md\n M src/util.py\n"
    # a change elsewhere is no obstacle, and stays as it was
    work.sh("git checkout -- src/util.py")
    work.ok("apply", "--commit", "s")
    assert work.git("status", "--porcelain") == " M docs/c.md\n"


def test_apply_commit_of_paths_keeps_the_rest_pending_with_its_commit(work: Work) -> None:
    work.run(WORK)
    head = work.git("rev-parse", "HEAD").strip()
    work.ok("apply", "--commit", "s", "--", "README.md")
    assert log(work, f"{head}..HEAD", "%an|%s") == ["Agent|agent: readme"]
    assert work.git("diff", "--name-only", head, "HEAD") == "README.md\n"
    # the landed commit is no longer pending; the rest keeps its own commit and author
    assert log(work, "refs/agent-base/s..agent/s", "%an|%s")[1:] == ["Agent|agent: util"]
    assert work.git("diff", "--name-only", "refs/agent-base/s", "agent/s") \
        == "loose.txt\nsrc/util.py\n"
    assert work.review_paths() == ["loose.txt", "src/util.py"]


def test_apply_commit_stops_at_a_conflict_with_nothing_written(work: Work) -> None:
    work.run(WORK)
    work.sh("echo theirs >> README.md && git commit -qam mine")
    state, tip = work.index_and_head(), work.git("rev-parse", "agent/s")
    p = work.agent("apply", "--commit", "s")
    assert p.returncode == 1 and "agent: readme" in p.stderr and "conflicts" in p.stderr
    assert work.index_and_head() == state and work.git("rev-parse", "agent/s") == tip
    assert work.git("status", "--porcelain") == ""


def test_apply_commit_on_a_detached_head_moves_no_branch(work: Work) -> None:
    work.run(WORK)
    main = work.git("rev-parse", "main")
    work.sh("git checkout -q --detach")
    p = work.ok("apply", "--commit", "s")
    assert "on the detached HEAD" in p.stderr and "git switch -c" in p.stderr
    assert work.git("rev-parse", "main") == main
    assert log(work, "-1")[0].startswith("git agent: sh -c")


def test_plain_apply_leaves_only_the_pending_work_and_no_applied_commit_comes_back(
        work: Work) -> None:
    work.run(WORK)
    before = work.git("rev-parse", "agent/s").strip()
    work.ok("apply", "s", "--", "README.md")
    assert work.git("status", "--porcelain") == " M README.md\n"
    # the applied agent commit is gone from the branch; no "what is left" commit piles up
    got = pending(work)
    assert "agent: readme" not in got and got[1:] == ["agent: util"] and len(got) == 2
    assert not any("what is left" in s for s in got)
    assert work.git("diff", "--name-only", "refs/agent-base/s", "agent/s") \
        == "loose.txt\nsrc/util.py\n"
    assert work.git("rev-parse", "refs/agent-history/s^1").strip() == before
    # a second apply chains the record; the first one stays reachable
    first = work.git("rev-parse", "refs/agent-history/s").strip()
    work.ok("apply", "s", "--", "loose.txt")
    assert work.git("rev-parse", "refs/agent-history/s^2").strip() == first
    assert pending(work) == ["agent: util"]
    # the next run: the agent's old commits (in its own git) do not come back as pending
    work.run(f"echo more > more.txt && git add more.txt && {AGENT} commit -qm 'agent: more'")
    got = pending(work)
    assert "agent: readme" not in got and "agent: more" in got
    assert work.git("diff", "--name-only", "refs/agent-base/s", "agent/s") \
        == "more.txt\nsrc/util.py\n"


def test_apply_commit_asks_about_risky_files_as_apply_does(work: Work) -> None:
    work.run(f"echo '* filter=x' > .gitattributes && git add .gitattributes && "
             f"{AGENT} commit -qm 'agent: attributes'")
    state, tip = work.index_and_head(), work.git("rev-parse", "agent/s")
    p = work.agent("apply", "--commit", "s")  # no terminal to ask on: refused
    assert p.returncode == 1 and ".gitattributes" in p.stderr and "--yes" in p.stderr
    assert work.index_and_head() == state and work.git("rev-parse", "agent/s") == tip
    p = work.agent("apply", "--commit", "-i", "s")
    assert p.returncode == 2 and "takes no -i, -p, --merge" in p.stderr
    work.ok("apply", "--commit", "--yes", "s")
    assert log(work, "-1", "%an|%s") == ["Agent|agent: attributes"]
    assert work.git("status", "--porcelain") == ""


def test_apply_commit_never_lands_your_uncommitted_work_from_the_base(work: Work) -> None:
    """You had uncommitted work when the run started (the base is a snapshot of it): the
    agent's commits land, yours stays uncommitted in the worktree, as it was."""
    work.sh("echo mine >> docs/c.md")
    work.run(f"echo u2 >> src/util.py && {AGENT} commit -qam 'agent: util' && "
             "echo loose > loose.txt")
    head = work.git("rev-parse", "HEAD").strip()
    work.ok("apply", "--commit", "s")
    assert work.git("diff", "--name-only", head, "HEAD") == "loose.txt\nsrc/util.py\n"
    assert work.git("status", "--porcelain") == " M docs/c.md\n"
    assert (work.root / "docs/c.md").read_text() == "c\nmine\n"


def test_apply_commit_of_a_branch_not_above_its_base_is_refused(work: Work) -> None:
    import shutil

    from tests.mergeback.test_session_state import store_folder

    work.run("echo one > one.txt")
    shutil.rmtree(store_folder(work))  # known by its refs alone (else review catches it up)
    orphan = work.actor.run(["git", "commit-tree", "-m", "elsewhere",
                             work.git("rev-parse", "agent/s^{tree}").strip()],
                            cwd=work.root, check=True).stdout.strip()
    work.git("update-ref", "refs/heads/agent/s", orphan)
    state = work.index_and_head()
    p = work.agent("apply", "--commit", "s")
    assert p.returncode == 1 and "does not descend from its base" in p.stderr
    assert len(p.stderr.splitlines()) == 1 and work.index_and_head() == state


def test_apply_commit_writes_no_terminal_escape_of_the_agent(work: Work) -> None:
    """A subject the agent wrote cannot drive your terminal when --commit lists what landed."""
    work.run(f"echo x >> README.md && {AGENT} commit -qam \"$(printf 'ok\\033[2K\\rno')\"")
    p = work.ok("apply", "--commit", "s")
    assert "\x1b" not in p.stderr and "\r" not in p.stderr
    assert "ok\\x1b[2K\\rno" in p.stderr
    # nor through `git log` (which prints messages raw): written out in your branch too
    assert work.git("log", "-1", "--format=%s") == "ok\\x1b[2K\\rno\n"


def test_the_next_run_after_apply_commit_squashes_nothing_and_brings_back_nothing(
        work: Work) -> None:
    """After --commit your branch has copies of the agent's commits; the agent's git inside
    still has its own line. The next run neither warns that it squashed that history nor
    brings it back as pending."""
    work.run(WORK)
    work.ok("apply", "--commit", "s")
    p = work.ok("run", "-s", "s", "--", "sh", "-c", "echo again > again.txt")
    assert "not imported" not in p.stderr and "squashed" not in p.stderr
    assert work.git("diff", "--name-only", "refs/agent-base/s", "agent/s") == "again.txt\n"
    assert not any(s.startswith("agent: ") for s in pending(work))


def test_the_agent_commits_on_its_old_line_after_apply_commit(work: Work) -> None:
    """The agent's git inside still has its own line after --commit; its new commits on it
    are kept (copied onto the pending branch, author and message kept), not squashed."""
    work.run(WORK)
    work.ok("apply", "--commit", "s")
    p = work.ok("run", "-s", "s", "--", "sh", "-c",
                f"echo again > again.txt && git add again.txt && {AGENT} commit -qm 'agent: again'")
    assert "not imported" not in p.stderr and "squashed" not in p.stderr
    assert log(work, "refs/agent-base/s..agent/s", "%an|%s") == ["Agent|agent: again"]
    assert work.git("diff", "--name-only", "refs/agent-base/s", "agent/s") == "again.txt\n"
    head = work.git("rev-parse", "HEAD").strip()
    work.ok("apply", "--commit", "s")
    assert log(work, f"{head}..HEAD", "%an|%s") == ["Agent|agent: again"]


def test_apply_commit_after_apply_p_never_takes_back_the_hunks_you_took(work: Work) -> None:
    """A run on a dirty worktree (its base a snapshot); apply -p takes one hunk and leaves
    one; you commit. agent/S then holds the hunk left alone, and --commit lands just that:
    never the old base snapshot, never your file without the hunk you took (attack 3, #5)."""
    lines = "".join(f"{i}\n" for i in range(1, 31))
    (work.root / "F").write_text(lines)
    work.git("add", "F")
    work.git("commit", "-qm", "F")
    work.sh("sed -i 's/^1$/1 MINE/' F")  # your uncommitted work when the run starts
    work.run("sed -i 's/^10$/10 AGENT-H1/; s/^25$/25 AGENT-H2/' F")
    work.ok("apply", "-p", "s", "--", "F", input="y\nn\n")
    assert pending(work) and not any("base snapshot" in s for s in pending(work))
    diff = work.git("diff", "refs/agent-base/s", "agent/s").splitlines()
    assert [ln for ln in diff if ln[:1] in "+-" and ln[:3] not in ("+++", "---")] == [
        "-25", "+25 AGENT-H2"]
    work.git("commit", "-qam", "my work, with the hunk I took")
    head = work.git("rev-parse", "HEAD").strip()
    work.ok("apply", "--commit", "s")
    assert not any("base snapshot" in s for s in log(work, f"{head}..HEAD"))
    assert (work.root / "F").read_text() == lines.replace("1\n", "1 MINE\n", 1).replace(
        "10\n", "10 AGENT-H1\n").replace("25\n", "25 AGENT-H2\n")
    assert work.git("status", "--porcelain") == ""
