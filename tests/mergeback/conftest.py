"""Fixtures for review/apply/list/drop: a repo owned by the actor and real `git agent run`s."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Actor


@dataclass
class Work:
    """One repo of one actor, with the CLI driven as that actor."""

    actor: Actor
    root: Path

    def agent(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
              ) -> subprocess.CompletedProcess[str]:
        p = self.actor.agent(*args, cwd=self.root, input=input, env=env)
        assert "Traceback" not in p.stderr, p.stderr
        return p

    def ok(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        p = self.agent(*args, **kw)  # type: ignore[arg-type]
        assert p.returncode == 0, f"{args}: {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    @contextlib.contextmanager
    def running(self, session: str) -> Iterator[subprocess.Popen[bytes]]:
        """A real run of session that writes live.txt, says so through a dir of the real home
        mounted writable, and waits for its gate: entered once the agent has written; the gate
        opens on the way out, and the run ends."""
        door = self.actor.home / "door"
        door.mkdir(exist_ok=True)
        self.actor.own(door)
        argv = self.actor._argv(["git", "agent", "run", "-s", session, "--mount", "door:rw",
                                 "--", "sh", "-c", "echo live > live.txt; : > ~/door/wrote; "
                                 "while [ ! -e ~/door/gate ]; do sleep 0.05; done"])
        bg = subprocess.Popen(argv, cwd=self.root, env=self.actor.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 30
            while not (door / "wrote").exists():
                assert time.time() < deadline and bg.poll() is None, "the agent did not start"
                time.sleep(0.05)
            yield bg
        finally:
            (door / "gate").write_text("")
            self.actor.own(door / "gate")
            bg.wait(timeout=60)

    def run(self, script: str, session: str = "s") -> None:
        """The agent's work: a real sandboxed run of a shell script."""
        self.ok("run", "-s", session, "--", "sh", "-c", script)

    def git(self, *args: str) -> str:
        return self.actor.git(*args, cwd=self.root)

    def sh(self, script: str) -> None:
        """The user's own edits, as the actor."""
        self.actor.run(["sh", "-c", script], cwd=self.root, check=True)

    def snapshot(self) -> dict[str, str]:
        """Every worktree entry (not .git) with its type, mode and content hash."""
        out: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for n in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                p = os.path.join(dirpath, n)
                rel = os.path.relpath(p, self.root)
                st = os.lstat(p)
                if os.path.islink(p):
                    out[rel] = "link:" + os.readlink(p)
                else:
                    out[rel] = f"{st.st_mode:o}:" + hashlib.sha1(Path(p).read_bytes()).hexdigest()
            for d in dirnames:
                if not os.path.islink(os.path.join(dirpath, d)):
                    out[os.path.relpath(os.path.join(dirpath, d), self.root) + "/"] = "dir"
        return out

    def index_and_head(self) -> tuple[str, str]:
        return self.git("ls-files", "-s", "--debug"), self.git("rev-parse", "HEAD")

    def review_paths(self, session: str = "s") -> list[str]:
        import json

        p = self.ok("review", session, "--json")
        return [f["path"] for f in json.loads(p.stdout)["files"]]


@pytest.fixture
def work(actor: Actor) -> Work:
    root = actor.make_repo("repo", {
        "README.md": "hello\n",
        "src/app.py": "".join(f"line {i}\n" for i in range(1, 11)),
        "src/util.py": "def f():\n    return 1\n",
        "docs/guide/a.md": "a\n", "docs/guide/deep/b.md": "b\n", "docs/c.md": "c\n",
        "tool.sh": "echo tool\n",
    })
    return Work(actor=actor, root=root)
