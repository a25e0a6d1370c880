"""`review --ignored` / `apply --ignored`: the build outputs capture leaves out of the branch,
listed with sizes and copied out as safely as any apply (git as the oracle: they stay ignored,
the index and HEAD never change)."""

from __future__ import annotations

import os

from tests.mergeback.conftest import Work

BUILD = ("printf 'dist/\\n.venv/\\n*.log\\n' > .gitignore; mkdir -p dist .venv/bin .venv/lib; "
         "printf wheel > dist/p.whl; printf '#!/bin/sh\\n' > .venv/bin/act; "
         "chmod +x .venv/bin/act; printf lib > .venv/lib/x.py; printf new > new.log; "
         "echo more >> README.md")


def test_review_ignored_lists_them_with_sizes_a_new_dir_as_one_line(work: Work) -> None:
    work.run(BUILD)
    assert work.review_paths() == [".gitignore", "README.md"]  # captured: not the ignored ones
    out = work.ok("review", "--ignored", "s").stdout.splitlines()
    assert out[0].startswith("session s: 4 ignored files, 21 B, left out of agent/s")
    rows = [line.split() for line in out[1:]]
    assert rows == [[".venv/", "13", "B", "(2", "files,", "a", "new", "directory)"],
                    ["dist/", "5", "B", "(1", "file,", "a", "new", "directory)"],
                    ["new.log", "3", "B"]]
    only = work.ok("review", "--ignored", "s", "--", "dist").stdout
    assert "dist/" in only and ".venv" not in only


def test_apply_ignored_copies_the_named_paths_only_and_keeps_them_ignored(work: Work) -> None:
    work.run(BUILD)
    before = work.index_and_head()
    p = work.agent("apply", "--ignored", "s")
    assert p.returncode == 2 and "name the paths" not in p.stderr and "PATH" in p.stderr
    p = work.agent("apply", "--ignored", "s", "--", "nothere")
    assert p.returncode != 0 and "not among the session's ignored files" in p.stderr
    p = work.agent("apply", "--ignored", "s", "--", ".venv")  # an executable: asked, no tty
    assert p.returncode != 0 and "new executable file" in p.stderr
    assert not (work.root / ".venv").exists()
    work.ok("apply", "--ignored", "--yes", "s", "--", ".venv", "dist/p.whl")
    assert (work.root / "dist/p.whl").read_bytes() == b"wheel"
    assert os.access(work.root / ".venv/bin/act", os.X_OK)
    assert (work.root / ".venv/lib/x.py").read_bytes() == b"lib"
    assert not (work.root / "new.log").exists()
    assert work.index_and_head() == before
    assert work.git("status", "--porcelain", "--", "dist", ".venv").split() == [
        "??", ".venv/", "??", "dist/"]  # untracked: nothing was added to the index
    assert work.review_paths() == [".gitignore", "README.md"]  # the branch is untouched
    work.ok("apply", "s", "--", ".gitignore")  # with the agent's .gitignore, git ignores them
    assert work.git("status", "--porcelain", "--ignored", "--", "dist", ".venv").split() == [
        "!!", ".venv/", "!!", "dist/"]
    again = work.ok("apply", "--ignored", "--yes", "s", "--", ".venv")
    assert "already has them all" in again.stderr


def test_apply_ignored_never_writes_over_a_file_of_yours(work: Work) -> None:
    work.run(BUILD)
    work.sh("printf mine > new.log")
    snap = work.snapshot()
    p = work.agent("apply", "--ignored", "--yes", "s", "--", "new.log", "dist")
    assert p.returncode != 0 and "new.log: your worktree has another file there" in p.stderr
    assert work.snapshot() == snap  # all or nothing: dist/ was not copied either


def test_apply_ignored_refuses_a_link_leading_out_and_a_git_dir_shape(work: Work) -> None:
    work.run("printf 'out/\\n' > .gitignore; mkdir -p out/repo/objects out/repo/refs; "
             "ln -s /etc/passwd out/pw; printf 'ref: x\\n' > out/repo/HEAD; "
             "printf x > out/repo/objects/o")
    snap = work.snapshot()
    p = work.agent("apply", "--ignored", "--yes", "s", "--", "out/pw")
    assert p.returncode != 0 and "symlink to an absolute path" in p.stderr
    p = work.agent("apply", "--ignored", "--yes", "s", "--", "out/repo")
    assert p.returncode != 0 and "makes git find another repository" in p.stderr
    assert work.snapshot() == snap


def test_apply_ignored_streams_a_file_and_keeps_its_holes(work: Work) -> None:
    """A 1.1 GB sparse file the agent made with truncate (two bytes of data in it): copied out
    under a 600 MiB cap on git agent's address space (so never read whole), its holes kept
    (it takes what the session's copy takes on disk, not 1.1 GB), byte for byte the same; over
    1 GiB it is a risk you confirm, said with its size."""
    size = 1100 << 20
    work.run(f"printf 'dist/\\n' > .gitignore; mkdir dist; truncate -s {size} dist/model.bin; "
             "printf A | dd of=dist/model.bin bs=1 seek=123456789 conv=notrunc 2>/dev/null; "
             "printf Z | dd of=dist/model.bin bs=1 seek=1000000000 conv=notrunc 2>/dev/null")
    p = work.agent("apply", "--ignored", "s", "--", "dist/model.bin")
    assert p.returncode != 0 and "dist/model.bin: big file: 1.2 GB" in p.stderr, p.stderr
    assert not (work.root / "dist/model.bin").exists()
    p = work.actor.run(["prlimit", f"--as={600 << 20}", "git", "agent", "apply", "--ignored",
                        "--yes", "s", "--", "dist/model.bin"], cwd=work.root)
    assert p.returncode == 0, p.stderr
    out = work.root / "dist/model.bin"
    st = out.stat()
    assert st.st_size == size
    assert st.st_blocks * 512 < 1 << 20, f"written dense: {st.st_blocks * 512} bytes on disk"
    with open(out, "rb") as f:
        f.seek(123456788)
        assert f.read(3) == b"\0A\0"
        f.seek(1000000000)
        assert f.read(1) == b"Z"
    again = work.ok("apply", "--ignored", "--yes", "s", "--", "dist")
    assert "already has them all" in again.stderr


def test_apply_ignored_refuses_a_chain_of_links_leading_out(work: Work) -> None:
    """security.md, "What comes back", rule 3: each link's text reads as inside (out/a -> ..,
    out/u -> a/..), but the kernel resolves out/u above the worktree; refused, as a link whose
    own target leads out is."""
    work.run("printf 'out/\\n' > .gitignore; mkdir -p out; ln -s .. out/a; ln -s a/.. out/u; "
             "ln -s a/src out/ok")
    snap = work.snapshot()
    p = work.agent("apply", "--ignored", "--yes", "s", "--", "out/a", "out/u")
    assert p.returncode != 0 and "out/u: symlink pointing outside the repository" in p.stderr
    assert work.snapshot() == snap
    p = work.agent("apply", "--ignored", "s", "--", "out/a", "out/ok")  # no terminal: asked
    assert p.returncode != 0 and "out/a: symlink to a directory above it" in p.stdout + p.stderr
    assert work.snapshot() == snap
    work.ok("apply", "--ignored", "--yes", "s", "--", "out/a", "out/ok")
    assert os.path.realpath(work.root / "out/ok") == os.path.realpath(work.root / "src")


def test_apply_ignored_judges_links_through_your_worktree_never_the_sessions_upper(
        work: Work) -> None:
    """security.md, "What comes back", rule 3: a copied link is judged through what your
    worktree will be once copied, never the session's upper: there your npm-linked package
    and the ignored directory the agent deleted are still yours. The kernel is the oracle."""
    home = work.actor.home
    (home / ".ssh").mkdir(exist_ok=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY\n")
    work.actor.own(home / ".ssh")
    work.sh("printf 'node_modules/\\nbuild/\\n.cache/\\n' > .gitignore && git add .gitignore && "
            "git commit -qm ignore && mkdir -p ../pkg node_modules .cache/x && "
            "ln -s \"$PWD/../pkg\" node_modules/foo && echo m > .cache/x/i")
    work.run("rm node_modules/foo; rm -rf .cache; mkdir build; ln -s ../.cache build/x; "
             "ln -s ../node_modules/foo/../../.ssh/id_ed25519 build/k")
    snap = work.snapshot()
    p = work.agent("apply", "--ignored", "--yes", "s", "--", "build/k")
    assert p.returncode != 0 and "build/k: symlink pointing outside the repository" in p.stderr
    assert work.snapshot() == snap
    p = work.agent("apply", "--ignored", "s", "--", "build/x")  # no terminal: asked
    assert p.returncode != 0 and "build/x: symlink to a directory above it" in p.stdout + p.stderr
    assert work.snapshot() == snap
    work.ok("apply", "--ignored", "--yes", "s", "--", "build/x")
    assert os.path.realpath(work.root / "build/x") == os.path.realpath(work.root / ".cache")
