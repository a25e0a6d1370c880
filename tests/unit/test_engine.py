"""apply's pure decisions, in process: the three-way decision table (every base/work/agent
combination), closure, and the refusal of a rejection that cannot stand next to a pending path.
The real-CLI tests (tests/mergeback) show the same through `git agent apply`."""

from __future__ import annotations

from pathlib import Path

import pytest

from git_agent.errors import GitAgentError
from git_agent.gittree import BLOB, EXEC, LINK, TREE
from git_agent.mergeback import engine
from git_agent.mergeback.view import FileChange
from git_agent.mergeback.worktree_files import Entry

C = FileChange(b"f", "modified", BLOB, BLOB, "1" * 40, "2" * 40)
BASE = Entry(BLOB, b"a\nb\nc\n")
WORK = Entry(BLOB, b"A\nb\nc\n")  # the user changed the first line
AGENT = Entry(BLOB, b"a\nb\nC\n")  # the agent the last: merges cleanly with WORK
CLASH = Entry(BLOB, b"X\nb\nc\n")  # the agent the first line too: overlaps WORK
DIR = Entry(TREE)
LNK = Entry(LINK, b"target")
BIN_BASE, BIN_WORK, BIN_AGENT = Entry(BLOB, b"\0a"), Entry(BLOB, b"\0w"), Entry(BLOB, b"\0g")

# (base, work, agent) -> (write, noop, conflict substring or None, markers)
TABLE = [
    # the worktree already holds the agent's side (added, changed, deleted alike)
    ((None, AGENT, AGENT), (AGENT, True, None, False)),
    ((BASE, AGENT, AGENT), (AGENT, True, None, False)),
    ((BASE, None, None), (None, True, None, False)),
    ((None, None, None), (None, True, None, False)),
    # the worktree is the base: the agent's side is written (or the path deleted)
    ((None, None, AGENT), (AGENT, False, None, False)),
    ((BASE, BASE, AGENT), (AGENT, False, None, False)),
    ((BASE, BASE, None), (None, False, None, False)),
    ((BASE, BASE, LNK), (LNK, False, None, False)),
    ((BASE, BASE, Entry(EXEC, BASE.data)), (Entry(EXEC, BASE.data), False, None, False)),
    # both sides moved
    ((BASE, WORK, None), (WORK, True, "deleted by the agent, changed in your worktree", False)),
    ((BASE, None, AGENT), (AGENT, False, "changed by the agent, deleted in your worktree",
                           False)),
    ((BASE, DIR, AGENT), (DIR, True, "a directory in your worktree", False)),
    ((None, DIR, AGENT), (DIR, True, "a directory in your worktree", False)),
    ((BASE, LNK, AGENT), (LNK, True, "changed by both (not text files", False)),
    ((BASE, WORK, LNK), (WORK, True, "changed by both (not text files", False)),
    ((LNK, WORK, AGENT), (WORK, True, "changed by both (not text files", False)),
    ((None, LNK, AGENT), (LNK, True, "added by both, differently (not text files", False)),
    ((BASE, WORK, AGENT), (Entry(BLOB, b"A\nb\nC\n"), False, None, False)),
    ((BASE, WORK, CLASH), (None, False, "changed by both, overlapping", True)),
    ((None, WORK, CLASH), (None, False, "added by both, differently", True)),
    ((BIN_BASE, BIN_WORK, BIN_AGENT), (BIN_WORK, True, "binary file changed by both", False)),
]


@pytest.mark.parametrize(("sides", "want"), TABLE)
def test_decide(sides: tuple[Entry | None, Entry | None, Entry | None],
                want: tuple[Entry | None, bool, str | None, bool], tmp_path: Path) -> None:
    base, work, agent = sides
    a = engine.decide(C, base, work, agent, merge=False, labels=("w", "b", "a"), cwd=tmp_path)
    write, noop, conflict, markers = want
    assert (a.noop, a.markers) == (noop, markers)
    assert (a.conflict is None) == (conflict is None)
    if conflict is not None:
        assert a.conflict is not None and conflict in a.conflict
    if markers:  # git merge-file's markers, with the labels given
        assert a.write is not None and b"<<<<<<< w" in a.write.data and b">>>>>>> a" in a.write.data
    else:
        assert a.write == write


def test_decide_keeps_the_users_mode_when_the_agent_did_not_change_it(tmp_path: Path) -> None:
    work = Entry(EXEC, WORK.data)  # the user made it executable
    a = engine.decide(C, BASE, work, AGENT, merge=False, labels=("w", "b", "a"), cwd=tmp_path)
    assert a.write == Entry(EXEC, b"A\nb\nC\n") and not a.conflict


def ch(path: str, status: str, old: int = BLOB, new: int = BLOB) -> FileChange:
    return FileChange(path.encode(), status, 0 if status == "added" else old,
                      0 if status == "deleted" else new,
                      None if status == "added" else "1" * 40,
                      None if status == "deleted" else "2" * 40)


def test_closure_adds_the_deletions_a_pick_needs() -> None:
    everything = [ch("a", "deleted"), ch("a/f", "added"), ch("d/x", "deleted"),
                  ch("d", "added"), ch("other", "deleted")]
    # a file replaced by a dir holding a/f; a dir d replaced by a file d
    got = engine.closure([everything[1], everything[3]], everything)
    assert [c.path for c in got] == [b"a", b"a/f", b"d/x", b"d"]
    assert engine.closure([everything[4]], everything) == [everything[4]]


def test_rejecting_a_file_whose_dir_stays_pending_is_refused() -> None:
    link, inner = ch("dl", "deleted", old=LINK), ch("dl/f", "added")
    with pytest.raises(GitAgentError, match="cannot reject dl and keep dl/f"):
        engine.refuse_split_rejection([link], [], [link, inner])
    engine.refuse_split_rejection([link, inner], [], [link, inner])  # both: fine
    engine.refuse_split_rejection([link], [inner], [link, inner])  # applied: fine
    engine.refuse_split_rejection([inner], [], [link, inner])  # the new file alone: fine


def test_rejecting_a_deleted_file_under_a_pending_file_for_its_dir_is_refused() -> None:
    old, new = ch("d/x", "deleted"), ch("d", "added")
    with pytest.raises(GitAgentError, match="cannot reject d/x and keep d in the session"):
        engine.refuse_split_rejection([old], [], [old, new])
    engine.refuse_split_rejection([new], [], [old, new])  # rejecting the new file: no base
