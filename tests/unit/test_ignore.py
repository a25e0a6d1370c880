"""ignore.Rules against `git check-ignore --no-index` as the oracle."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from git_agent.capture import ignore
from tests.conftest import run_git

# (files: {ignore-file path: content}, paths to ask about; all are created as files)
CASES: list[tuple[dict[str, str], list[str]]] = [
    ({".gitignore": "build/\n!build/keep\n"}, ["build/keep", "build/x", "a/build/y", "buildx"]),
    ({".gitignore": "x/**\n!x/keep\n"}, ["x/keep", "x/y/z", "xx"]),
    ({".gitignore": "*\n!*/\n!keep\n"}, ["keep", "a/keep", "a/other", "other"]),
    ({".gitignore": "*.log\n!important.log\n"},
     ["a.log", "important.log", "d/important.log", "d/b.log"]),
    ({".gitignore": "/root.txt\n"}, ["root.txt", "d/root.txt"]),
    ({".gitignore": "d/*.c\n"}, ["d/a.c", "d/e/a.c", "e/d/a.c"]),
    ({".gitignore": "**/foo/bar\n"}, ["foo/bar", "a/b/foo/bar", "x/foo/bar2"]),
    ({".gitignore": "a/**/b\n"}, ["a/b", "a/x/b", "a/x/y/b", "a/bc"]),
    ({".gitignore": "foo/\n"}, ["foo/x", "d/foo/x", "foo2"]),
    ({".gitignore": "dir\n!dir/sub/\n"}, ["dir/sub/f", "dir/f"]),
    ({".gitignore": "dir/*\n!dir/sub/\n"}, ["dir/sub/f", "dir/f", "dir/sub/g/h"]),
    ({".gitignore": "x/**/\n!x/k\n"}, ["x/k", "x/d/f", "x/f"]),
    ({".gitignore": "[a-c]?.txt\n\\!bang\nsp\\ \ntrail   \n\\#hash\n#comment\n"},
     ["ab.txt", "dx.txt", "!bang", "sp ", "b/cc.txt", "trail", "#hash", "#comment"]),
    ({".gitignore": "[!a]*.o\n[[:digit:]]n\n"}, ["a.o", "b.o", "5n", "xn"]),
    ({".gitignore": "-dash\n*~\n"}, ["-dash", "f~", "d/-dash"]),
    ({".gitignore": "*.tmp\n", "sub/.gitignore": "!keep.tmp\n/local\n"},
     ["sub/keep.tmp", "sub/x.tmp", "keep.tmp", "sub/local", "sub/d/local", "local"]),
    ({".gitignore": "!a.txt\n", "sub/.gitignore": "a.txt\n"}, ["sub/a.txt", "a.txt"]),
    ({".gitignore": "gen/\n", "gen/.gitignore": "!*\n"}, ["gen/x"]),
    ({"sub/.gitignore": "deep/\n*.bin\n!/top.bin\n"},
     ["sub/a/deep/f", "sub/deep/f", "deep/f", "sub/x.bin", "sub/top.bin", "x.bin"]),
    ({".git/info/exclude": "*.secret\nnotes/\n", ".gitignore": "!b.secret\n"},
     ["a.secret", "b.secret", "notes/n", "d/notes/n"]),
    ({"GLOBAL": "*.swp\n.env\n", ".gitignore": "!keep.swp\n", ".git/info/exclude": "!.env\n"},
     ["a.swp", "keep.swp", ".env", "d/.env"]),
    ({".gitignore": "a b\nsp ace/\n"}, ["a b", "sp ace/f", "a"]),
    ({".gitignore": "**/a\na/**\n"}, ["x/y/a", "a", "b/a/c", "ab"]),
    ({".gitignore": "a**b\n"}, ["axxb", "a/b", "ab"]),
    ({".gitignore": "[[:alpha:]][[:digit:]]\n[[:punct:]]p\n[[:space:]]s\n"},
     ["a1", "11", "!p", "]p", "ap", " s", "xs"]),
    ({".gitignore": "[a\\]]x\n[\\!]y\n[]a]z\n[!]b]w\n[a-]v\n[^x]u\n"},
     ["]x", "ax", "bx", "!y", "\\y", "]z", "az", "cw", "]w", "-v", "av", "bv", "xu", "yu"]),
    ({".gitignore": "x[\nun[closed\nback\\\nlast\\\\\n[z-a]r\n"},
     ["x[", "un[closed", "back\\", "back", "last\\", "zr", "ar"]),
    ({".gitignore": "crlf\r\n*.o \r\n"}, ["crlf", "a.o"]),
    ({".gitignore": "\ufeffbom\n"}, ["bom"]),
    ({".gitignore": "d[/]e\nf[!a]g\n"}, ["d/e", "f/g", "fbg"]),
    ({".gitignore": "*a*a*a*a*a*a*a*a*a*a*a*a*b\n"}, ["a" * 60, "a" * 12 + "b"]),
    ({".gitignore": "caf\xe9\n[\xe0-\xff]x\n"}, ["caf\xe9", "\xe9x", "ax"]),
]


def _oracle(root: Path, paths: list[str]) -> dict[str, bool]:
    out = subprocess.run(["git", "check-ignore", "--no-index", "-v", "-n", "-z", "--stdin"],
                         cwd=root, input=b"".join(os.fsencode(p) + b"\0" for p in paths),
                         capture_output=True).stdout
    f = out.split(b"\0")
    got: dict[str, bool] = {}
    for i in range(0, len(f) - 1, 4):
        got[os.fsdecode(f[i + 3])] = bool(f[i]) and not f[i + 2].startswith(b"!")
    return got


@pytest.mark.parametrize("files,paths", CASES, ids=[str(i) for i in range(len(CASES))])
def test_matches_git_check_ignore(tmp_path: Path, hermetic: Path, files: dict[str, str],
                                  paths: list[str]) -> None:
    root = tmp_path / "r"
    root.mkdir()
    run_git("init", "-q", cwd=root)
    for name, text in files.items():
        target = hermetic / ".config" / "git" / "ignore" if name == "GLOBAL" else root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_text("x")

    def load(d: bytes) -> bytes | None:
        f = root / os.fsdecode(d) / ".gitignore"
        return f.read_bytes() if f.is_file() else None

    rules = ignore.Rules(load_gitignore=load,
                         exclude=ignore.host_excludes(root=root, common_dir=root / ".git"))
    want = _oracle(root, paths)
    got = {p: rules.ignored(os.fsencode(p)) for p in paths}
    assert got == want


def test_non_utf8_names() -> None:
    rules = ignore.Rules(load_gitignore=lambda d: b"caf\xe9*\n" if d == b"" else None,
                         exclude=b"")
    assert rules.ignored(b"caf\xe9.txt")
    assert not rules.ignored(b"cafe.txt")


_ATOMS = ["a", "b", "ab", "*", "?", "**", "[ab]", "[!a]", "[a-c]", "[[:alpha:]]", "\\*",
          "x", ".o", "-", "[]a]"]


def _random_tree(rng: random.Random) -> tuple[dict[str, str], list[str]]:
    """Nested ignore files of random patterns (negations, anchors, dir-only, **) and paths."""
    names = ["a", "b", "ab", "x", "a.o", "bx", "aab", "*", "-", "]a"]
    dirs = [""] + ["/".join(rng.choice(names) for _ in range(rng.randint(1, 3)))
                   for _ in range(4)]
    files: dict[str, str] = {}
    for d in rng.sample(dirs, 3):
        lines = []
        for _ in range(rng.randint(1, 5)):
            pat = "".join(rng.choice(_ATOMS) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.3:
                pat = rng.choice(["/", "**/", ""]) + pat + rng.choice(["/", "/**", ""])
            elif rng.random() < 0.3:
                pat = rng.choice(names) + "/" + pat
            lines.append(("!" if rng.random() < 0.3 else "") + pat)
        files[(d + "/" if d else "") + ".gitignore"] = "\n".join(lines) + "\n"
    files[".git/info/exclude"] = rng.choice(["*.o\n", "!a.o\nb\n", ""])
    files["GLOBAL"] = rng.choice(["x\n", "!bx\n*x\n", ""])
    paths = sorted({"/".join(rng.choice(names) for _ in range(rng.randint(1, 4)))
                    for _ in range(40)})
    # a path may not be both a file and a directory
    paths = [p for p in paths if not any(q.startswith(p + "/") for q in paths)]
    paths = [p for p in paths if not any(f.startswith(p + "/") for f in files)]
    return files, paths


@pytest.mark.parametrize("seed", range(40))
def test_generated_trees_match_git_check_ignore(tmp_path: Path, hermetic: Path,
                                                seed: int) -> None:
    files, paths = _random_tree(random.Random(seed))
    test_matches_git_check_ignore(tmp_path, hermetic, files, paths)


def test_a_huge_ignore_file_neither_hangs_nor_breaks_capture() -> None:
    """20,000 patterns pass what one re2 set may hold: they are split, order kept (the last
    match wins across the split), and the backtracking ones stay linear."""
    lines = [f"{'*a' * 12}*b{i}" for i in range(20_000)] + [f"f{i}" for i in range(20_000)]
    lines += ["!f7", "f7/"]
    data = ("\n".join(lines) + "\n").encode()
    rules = ignore.Rules(load_gitignore=lambda d: data if d == b"" else None, exclude=b"")
    assert not rules.ignored(b"a" * 60)
    assert rules.ignored(b"a" * 12 + b"b19999")
    assert rules.ignored(b"f19999") and rules.ignored(b"f0")
    assert not rules.ignored(b"f7")
    assert rules.ignored(b"f7", is_dir=True)
    assert not rules.ignored(b"g")
