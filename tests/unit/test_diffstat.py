"""mergeback/diffstat.py: `git diff --stat` drawn from stored line counts is git's own, byte for
byte. git is the oracle: for every shape of change (long, short, quoted and unicode names,
binary added, changed, deleted and mode-only, symlinks, type changes, empty files, hundreds of
files, counts that need scaling) and every width (COLUMNS), with and without colour, the block
drawn from `diffstat.count`'s numstat equals `git diff --stat` of the same two commits."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from git_agent.mergeback import diffstat
from git_agent.ui import quote_path
from tests.conftest import run_git

LONG = "a/very/long/directory/name/that/goes/on/and/on/file_with_a_long_name_indeed.txt"
LONGER = "x" * 140 + ".txt"  # no slash after the cut
# each shape: the base's files, then the head's (None: absent; bytes: binary; ("link", t))
SHAPES: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "short": ({"a.txt": "1\n"}, {"a.txt": "1\n2\n"}),
    "names": ({"naïve-é.txt": "x\n", "with space.txt": "a\n", "q\"uote": "q\n"},
              {"naïve-é.txt": "y\n", "with space.txt": "b\nc\n", "q\"uote": "", "tab\there": "t\n",
               LONG: "l\n" * 7, LONGER: "m\n", "日本語/ファイル.md": "j\n"}),
    "binary": ({"b.bin": b"\0" * 100, "gone.bin": b"\0x", "same.bin": b"\0same",
                "t.txt": "t\n"},
               {"b.bin": b"\0" * 12345, "new.bin": b"\0\1\2", "same.bin": (b"\0same", 0o755),
                "t.txt": "t\n" * 3}),
    "binary-only": ({"m.bin": b"\0" * 5}, {"m.bin": (b"\0" * 5, 0o755), "n.bin": b"\0"}),
    "modes-links": ({"run.sh": "echo\n", "f": "file\n", "l": ("link", "a")},
                    {"run.sh": ("echo\n", 0o755), "f": ("link", "target"), "l": "was a link\n",
                     "new-link": ("link", "/etc/passwd"), "empty": ""}),
    "added-deleted": ({"old.txt": "o\n" * 40}, {"new.txt": "n\n" * 3}),
    "scaled": ({"big.txt": "".join(f"{i}\n" for i in range(3000)), "small.txt": "s\n"},
               {"big.txt": "".join(f"{i}\n" for i in range(0, 3000, 3)) + "z\n" * 10000,
                "small.txt": "s\nt\n", "mid.txt": "m\n" * 77}),
    "hundreds": ({f"d{i % 7}/f{i}.txt": f"{i}\n" for i in range(300)},
                 {**{f"d{i % 7}/f{i}.txt": f"{i}\n{i}\n" * (i % 5)
                     for i in range(300) if i % 11}, **{f"e/{i}": "e\n" for i in range(40)}}),
}


def _write(root: Path, files: dict[str, object]) -> None:
    run_git("rm", "-rq", "--cached", "--ignore-unmatch", ".", cwd=root)
    for p in list(root.iterdir()):
        if p.name != ".git":
            subprocess.run(["rm", "-rf", str(p)], check=True)
    for rel, v in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o644
        if isinstance(v, tuple) and v[0] == "link":
            os.symlink(str(v[1]), p)
            continue
        if isinstance(v, tuple):
            v, mode = v
        p.write_bytes(v if isinstance(v, bytes) else str(v).encode())
        os.chmod(p, mode)


def _commit(root: Path, files: dict[str, object]) -> str:
    _write(root, files)
    run_git("add", "-A", cwd=root)
    run_git("commit", "-q", "--allow-empty", "-m", "x", cwd=root)
    return run_git("rev-parse", "HEAD", cwd=root).strip()


def _git_stat(root: Path, base: str, head: str, *, color: bool, columns: str | None) -> bytes:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(["git", "diff", "--no-ext-diff", "--no-textconv", "--no-renames",
                           f"--color={'always' if color else 'never'}", "--stat", base, head],
                          cwd=root, env=env, capture_output=True, check=True).stdout


def _drawn(root: Path, base: str, head: str, *, color: bool, width: int) -> bytes | None:
    raw = subprocess.run(["git", "diff-tree", "-r", "-z", "--no-renames", "--raw", base, head],
                         cwd=root, capture_output=True, check=True).stdout.split(b"\0")
    paths = raw[1::2]
    metas = [m.split() for m in raw[0:-1:2]]
    oids = [(None if m[4] == b"A" else m[2].decode(), None if m[4] == b"D" else m[3].decode())
            for m in metas]

    def size(oid: str | None) -> int:
        return 0 if oid is None else int(run_git("cat-file", "-s", oid, cwd=root))

    counts = diffstat.count(root=root, base=base, head=head, size=size,
                            changes=[(p, *o) for p, o in zip(paths, oids, strict=True)])
    assert counts is not None
    rows = [(quote_path(p), a, d, b) for p, (a, d, b) in zip(paths, counts, strict=True)]
    return diffstat.render(rows, width=width, color=color)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_stat_drawn_from_counts_is_gits_at_every_width(repo: Path, shape: str) -> None:
    before, after = SHAPES[shape]
    base, head = _commit(repo, before), _commit(repo, after)
    for columns in (None, "1", "30", "45", "80", "100", "180", "400"):
        width = diffstat.width_from({} if columns is None else {"COLUMNS": columns})
        assert width is not None
        for color in (False, True):
            want = _git_stat(repo, base, head, color=color, columns=columns)
            assert _drawn(repo, base, head, color=color, width=width) == want, (columns, color)


def test_the_width_is_known_only_as_git_reads_it() -> None:
    assert diffstat.width_from({}) == 80
    assert diffstat.width_from({"COLUMNS": "132"}) == 132
    for odd in ("", "0", "-5", " 90", "90x", "1e3", "9999999"):  # git's atoi: ask git
        assert diffstat.width_from({"COLUMNS": odd}) is None


def test_counts_are_none_when_they_do_not_follow_the_change_list(repo: Path) -> None:
    base = _commit(repo, {"a": "1\n"})
    head = _commit(repo, {"a": "2\n", "b": "3\n"})
    assert diffstat.count(root=repo, base=base, head=head, changes=[(b"a", None, None)],
                          size=lambda o: 0) is None
    assert diffstat.count(root=repo, base=base, head=head, size=lambda o: 0,
                          changes=[(b"b", None, None), (b"a", None, None)]) is None


def test_git_draws_it_when_a_gitattributes_file_could_apply(repo: Path, hermetic: Path) -> None:
    """Every place git reads attributes from for a diff of two commits in a worktree."""
    _commit(repo, {"d/e/f.txt": "1\n", "g.txt": "2\n"})
    dirs = [repo / ".git"]
    env = {"HOME": str(hermetic)}

    def free() -> bool:
        return diffstat.attributes_free(root=repo, git_dirs=dirs, paths=[b"d/e/f.txt", b"g.txt"],
                                        environ=env)

    assert free()
    for place in ("d/e/.gitattributes", "d/.gitattributes", ".gitattributes",
                  ".git/info/attributes"):
        (repo / place).parent.mkdir(parents=True, exist_ok=True)
        (repo / place).write_text("*.txt -diff\n")
        assert not free(), place
        (repo / place).unlink()
    assert free()
    (repo / "other").mkdir()
    (repo / "other/.gitattributes").write_text("* -diff\n")  # no changed path below it
    assert free()
    run_git("add", "other/.gitattributes", cwd=repo)
    (repo / "other/.gitattributes").unlink()  # in the index only (git 2.39's diff of two
    # commits does not read the index, another version may): git draws it, to be sure
    assert not free()
    run_git("rm", "-q", "--cached", "other/.gitattributes", cwd=repo)
    assert free()
    xdg = hermetic / ".config/git/attributes"
    xdg.parent.mkdir(parents=True)
    xdg.write_text("*.txt -diff\n")
    assert not free()
    xdg.unlink()
    run_git("update-index", "--index-version", "4", cwd=repo)  # paths cut: not searched
    assert not free()


def test_git_draws_it_for_config_it_reads_and_for_submodules(repo: Path) -> None:
    plain = [(b"a", 0o100644, 0o100644)]
    args = {"root": repo, "git_dirs": [repo / ".git"], "environ": {"HOME": "/nonexistent"}}
    assert diffstat.usable(keys=frozenset({"user.name", "color.ui"}), changes=plain, **args)
    for key in sorted(diffstat.CONFIG):
        assert not diffstat.usable(keys=frozenset({key}), changes=plain, **args), key
    assert not diffstat.usable(keys=frozenset(), changes=[(b"m", 0, 0o160000)], **args)
