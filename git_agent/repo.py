"""Find the worktree git-agent runs in: its root, git dirs, HEAD; fast, with the git CLI only."""

from __future__ import annotations

import os
from pathlib import Path

from git_agent import proc
from git_agent.errors import NotARepository
from git_agent.record import Record


class Worktree(Record):
    __slots__ = ("root", "git_dir", "common_dir", "cwd")

    def __init__(self, root: Path, git_dir: Path, common_dir: Path, cwd: Path):
        self.root = root  # the worktree's top level, as the user sees it (symlinks resolved)
        self.git_dir = git_dir  # this worktree's git dir (== common_dir unless linked)
        self.common_dir = common_dir  # the repository's common git dir
        self.cwd = cwd  # where the user ran git agent (inside root)

    @property
    def linked(self) -> bool:
        """True for a `git worktree add` checkout, whose .git is a file."""
        return self.git_dir != self.common_dir

    @property
    def dot_git_inside(self) -> bool:
        """True when the common git dir lives inside the worktree (and so in its overlay)."""
        return within(self.common_dir, self.root)

    def head_ref(self) -> str | None:
        """refs/heads/<branch> that HEAD points at, or None when detached."""
        try:
            text = (self.git_dir / "HEAD").read_text(errors="replace").strip()
        except OSError:
            return None
        return text[5:].strip() if text.startswith("ref:") else None

    def head_oid(self) -> str | None:
        """The commit HEAD points at, or None when unborn."""
        return self.resolve("HEAD")

    def resolve(self, ref: str) -> str | None:
        """The commit ref names (a ref, HEAD, an oid), or None when it names none."""
        out = proc.git("rev-parse", "-q", "--verify", "--end-of-options", f"{ref}^{{commit}}",
                       cwd=self.root, check=False)
        return out.decode().strip() or None

    def ref_in_the_way(self, ref: str) -> str | None:
        """A ref that keeps git from creating ref (git keeps refs/heads/a and refs/heads/a/b
        apart): one under ref/, or one at a folder of its path; None when there is none."""
        under = proc.git("for-each-ref", "--count=1", "--format=%(refname)", f"{ref}/",
                         cwd=self.root, check=False).decode().strip()
        if under:
            return under
        parts = ref.split("/")
        for i in range(3, len(parts)):  # refs/heads/agent, ... (never refs/ or refs/heads)
            folder = "/".join(parts[:i])
            if proc.git("show-ref", "--verify", "--", folder, cwd=self.root,
                        check=False).strip():
                return folder
        return None


def within(path: Path, parent: Path) -> bool:
    """path is parent or below it (as given: resolve first where symlinks matter)."""
    return path == parent or parent in path.parents


_QUERY = ("--is-bare-repository", "--is-inside-work-tree", "--absolute-git-dir", "--git-common-dir")


def find_worktree(cwd: Path | None = None) -> Worktree:
    here = Path(os.getcwd() if cwd is None else cwd)
    # one git call in a worktree (--show-toplevel fails outside one: then ask again, to say why)
    p = proc.run(["git", "rev-parse", *_QUERY, "--show-toplevel"], cwd=here, check=False)
    lines = p.stdout.decode().splitlines()
    if p.returncode != 0 or len(lines) < 5 or lines[:2] != ["false", "true"]:
        p = proc.run(["git", "rev-parse", *_QUERY], cwd=here, check=False)
        lines = p.stdout.decode().splitlines()
        if p.returncode != 0 and b"dubious ownership" in p.stderr:
            raise NotARepository(
                f"git refuses the repository at {here}: it is owned by another user (see "
                "`git config --global --add safe.directory`); run git agent as its owner"
            )
        if p.returncode != 0 or len(lines) < 4:
            raise NotARepository(
                f"not in a git repository ({here}); cd into your project, or `git init` it first"
            )
        if lines[0] == "true":
            raise NotARepository("this is a bare repository; git agent needs a worktree to sandbox")
        if lines[1] != "true":
            raise NotARepository(
                "run git agent from inside the worktree, not from inside its .git directory"
            )
        lines.append(proc.git("rev-parse", "--show-toplevel", cwd=here).decode().strip())
    git_dir, common, top = lines[2:5]
    git_dir_p = Path(git_dir).resolve()
    common_p = Path(common)
    if not common_p.is_absolute():
        common_p = here / common_p
    return Worktree(
        root=Path(top).resolve(),
        git_dir=git_dir_p,
        common_dir=common_p.resolve(),
        cwd=here.resolve(),
    )
