"""`git agent review --stat` drawn from the line counts kept with the session's assessment
(mergeback/diffstat.py): byte for byte what `git diff --stat` printed there before, and git
itself wherever it could print otherwise. The oracle is git's own `git diff --stat` of the same
commits, run as the same user with the same environment; GIT_TRACE tells which way review
went."""

from __future__ import annotations

from pathlib import Path

from tests.mergeback.conftest import Work

AGENT = (
    "printf 'a\\0b' > blob.bin && ln -s /etc/passwd link && seq 5000 > big.txt && "
    "echo x > \"$(printf 'na\\303\\257ve \\346\\227\\245.txt')\" && chmod +x tool.sh && "
    "mkdir -p a/very/long/directory/name/that/goes/on/and/on && "
    "seq 3 > a/very/long/directory/name/that/goes/on/and/on/file_with_a_long_name_indeed.txt && "
    "mkdir many && for i in $(seq 300); do echo $i > many/f$i; done && "
    "echo more >> README.md && rm docs/c.md && : > empty && seq 12 > src/app.py")
GIT_STAT = ["diff", "--no-ext-diff", "--no-textconv", "--no-renames"]


def _review(work: Work, *args: str, env: dict[str, str] | None = None) -> tuple[str, bool]:
    """review's stat block, and whether git drew it (a `git diff ... --stat` was run)."""
    trace = work.actor.home / "trace"
    trace.unlink(missing_ok=True)
    p = work.ok("review", "s", "--stat", *args, env={**(env or {}), "GIT_TRACE": str(trace)})
    log = trace.read_text(errors="replace")
    assert "built-in: git rev-parse" in log  # the trace is of this review's git calls
    by_git = any(" diff " in line and "--stat" in line for line in log.splitlines())
    return p.stdout.split("\n\n", 1)[1], by_git


def _git(work: Work, *, color: bool, env: dict[str, str] | None = None, paths: tuple[str, ...]
         = ()) -> str:
    """What review printed before: git's own --stat of base..agent/s."""
    return work.actor.run(["git", *GIT_STAT, f"--color={'always' if color else 'never'}",
                           "--stat", "refs/agent-base/s", "agent/s", "--", *paths],
                          cwd=work.root, env=env, check=True).stdout


def _kept(work: Work) -> Path:
    (folder,) = (work.actor.home / ".local/state/git-agent").glob("*/sessions/s")
    return folder / "assessment"


def test_review_stat_draws_gits_stat_from_the_stored_counts(work: Work) -> None:
    work.run(AGENT)
    assert b'"counts": [[' in _kept(work).read_bytes()  # kept by the run's capture
    for env in ({}, {"COLUMNS": "200"}, {"COLUMNS": "30"}, {"COLUMNS": "1"}):
        got, by_git = _review(work, env=env)
        assert not by_git, env
        assert got == _git(work, color=False, env=env), env
    got = _review(work)[0]  # the shapes are there (80 columns: names cut, counts scaled)
    assert "|  Bin 0 -> 3 bytes\n" in got
    assert " .../on/and/on/file_with_a_long_name_indeed.txt " in got
    assert ' "na\\303\\257ve \\346\\227\\245.txt" ' in got and "| 5000 ++++++++++++" in got
    assert " tool.sh " in got and " 310 files changed, 5318 insertions(+), 11 deletions(-)" in got
    work.git("config", "color.ui", "always")  # colour on: git's green and red
    got, by_git = _review(work)  # another config: the assessment's key changed; made again
    assert by_git and got == _git(work, color=True)
    got, by_git = _review(work)  # then kept, with its counts
    assert not by_git and "\x1b[32m" in got
    assert got == _git(work, color=True)


def test_review_stat_asks_git_where_it_could_print_otherwise(work: Work) -> None:
    work.run(AGENT)
    assert _review(work)[1] is False
    got, by_git = _review(work, "--", "src")  # some paths only: git
    assert by_git and got == _git(work, color=False, paths=(":(top,literal)src",))
    got, by_git = _review(work, env={"COLUMNS": "90x"})  # a width git reads its own way
    assert by_git and got == _git(work, color=False, env={"COLUMNS": "90x"})
    work.git("config", "diff.statGraphWidth", "7")  # config git draws with
    for _ in range(2):  # the first one makes the assessment again (another key)
        got, by_git = _review(work)
        assert by_git and got == _git(work, color=False)
    work.git("config", "--unset", "diff.statGraphWidth")
    (work.root / ".gitattributes").write_text("*.txt -diff\n")  # text files shown as binary
    work.actor.own(work.root / ".gitattributes")
    got, by_git = _review(work)
    assert by_git and got == _git(work, color=False) and "big.txt" in got
    assert "| Bin" in got.split("big.txt", 1)[1].splitlines()[0]
    (work.root / ".gitattributes").unlink()
    work.git("config", "color.diff.new", "blue")  # a colour of git's that the counts lack
    work.git("config", "color.ui", "always")
    for _ in range(2):
        got, by_git = _review(work)
        assert by_git and got == _git(work, color=True) and "\x1b[34m" in got


def test_review_stat_asks_git_when_the_counts_were_made_under_other_config(work: Work) -> None:
    work.git("config", "diff.algorithm", "patience")  # the run's capture counts with it set
    work.run(AGENT)
    assert b'"counts": null' in _kept(work).read_bytes()
    work.git("config", "--unset", "diff.algorithm")
    for _ in range(2):  # made again without it (another key), then kept with counts
        got, by_git = _review(work)
        assert got == _git(work, color=False)
    assert not by_git
