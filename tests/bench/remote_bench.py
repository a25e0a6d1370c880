"""Benchmark rows of `run --attempts` and of parallel remote sessions (bench.py --only
attempts,remote8): `--attempts 3` here vs one run, and 8 sessions at once on a remote (the sshd
of tests/remote/conftest.py on loopback: root only) vs one, as separate `run --on` and as one
`run --on --attempts 8`. Every session's branch is checked with git."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# each session writes its own name: its branch proves it ran, and ran as itself
WHO = ["sh", "-c", 'echo "$GIT_AGENT_SESSION" > who.txt']


def _check(b: Any, repo: Path, names: Sequence[str]) -> None:
    bases = {b.git("rev-parse", f"refs/agent-base/{s}", cwd=repo).strip() for s in names}
    if len(bases) != 1:
        raise SystemExit(f"bench: the sessions {names} do not share one base")
    for s in names:
        if b.git("show", f"agent/{s}:who.txt", cwd=repo) != f"{s}\n":
            raise SystemExit(f"bench: agent/{s} lacks its own result")
        b.drop(repo, s)


def _timed_run(b: Any, argv: Sequence[str], repo: Path, env: dict[str, str] | None = None,
               ) -> float:
    t = time.perf_counter()
    p = subprocess.run(list(argv), cwd=repo, env=env or b.env, capture_output=True)
    if p.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{p.stderr.decode(errors='replace')}")
    return time.perf_counter() - t


def _sshd() -> tuple[contextlib.AbstractContextManager[Any], Callable[[Any, Path], Path]]:
    """The tests' sshd and how to make a client config for it: tests/remote/sshd.py's harness
    where there is one, else the remote tests' fixture itself (tests/remote/conftest.py)."""
    sys.path.insert(0, str(ROOT))
    try:
        from tests.remote import sshd as harness  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        from tests.conftest import Actor
        from tests.remote import conftest

        def client(server: Any, base: Path) -> Path:
            return Path(server.client(Actor(name="root", uid=0, gid=0, base=base)))

        fixture: Callable[[], Iterator[Any]] = conftest.sshd.__wrapped__  # type: ignore[attr-defined]
        return contextlib.contextmanager(fixture)(), client
    return harness.running(), lambda server, base: Path(server.client(base))


def m_attempts(b: Any, n: int, attempts: int = 3) -> None:
    from tests.bench.bench import median

    print(f"run --attempts {attempts} ({n:,}-file repo, one uncommitted edit):")
    repo = b.repo(n)
    (repo / "d000/s0/f000000.txt").write_text("uncommitted\n")
    one, many = [], []
    try:
        for _ in range(b.rounds):
            s = b.name("one")
            one.append(_timed_run(b, ["git", "agent", "run", "-s", s, "--", *WHO], repo))
            _check(b, repo, [s])
            s = b.name("att")
            many.append(_timed_run(b, ["git", "agent", "run", "--attempts", str(attempts),
                                       "-s", s, "--", *WHO], repo))
            _check(b, repo, [f"{s}.{i}" for i in range(1, attempts + 1)])
    finally:
        b.reset(repo)
    b.row(f"run --attempts {attempts} (branches checked)", median(many), "one run",
          median(one))


def m_remote_parallel(b: Any, n: int, sessions: int = 8) -> None:
    from tests.bench.bench import median

    if os.geteuid() != 0:
        print("parallel remote sessions: skipped (the sshd harness needs root)")
        return
    print(f"parallel remote sessions ({sessions} at once, loopback sshd, {n:,}-file repo):")
    repo = b.repo(n)
    (repo / "d000/s0/f000000.txt").write_text("uncommitted\n")
    serving, client = _sshd()
    with serving as server:
        conf = client(server, b.root)
        b.git("config", "agent.sshConfig", str(conf), cwd=repo)
        b.run(["git", "agent", "remote", "add", "box", server.url], cwd=repo)
        on = ["git", "agent", "run", "--on", "box"]
        try:
            warm = b.name("warm")  # the remote's store and venv caches: not measured
            _timed_run(b, [*on, "-s", warm, "--", *WHO], repo)
            _check(b, repo, [warm])
            one, many, att = [], [], []
            for _ in range(b.rounds):
                s = b.name("r")
                one.append(_timed_run(b, [*on, "-s", s, "--", *WHO], repo))
                _check(b, repo, [s])
                names = [b.name("rp") for _ in range(sessions)]
                t = time.perf_counter()
                procs = [subprocess.Popen([*on, "-s", s, "--", *WHO], cwd=repo, env=b.env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                         for s in names]
                for s, p in zip(names, procs, strict=True):
                    _out, err = p.communicate()
                    if p.returncode != 0:
                        raise SystemExit(f"bench: {s} failed: {err.decode(errors='replace')}")
                many.append(time.perf_counter() - t)
                _check(b, repo, names)
                s = b.name("ra")
                att.append(_timed_run(b, [*on, "--attempts", str(sessions), "-s", s, "--",
                                          *WHO], repo))
                _check(b, repo, [f"{s}.{i}" for i in range(1, sessions + 1)])
        finally:
            b.reset(repo)
            b.run(["git", "agent", "remote", "remove", "box"], cwd=repo, check=False)
    b.row(f"{sessions} run --on at once (branches checked)", median(many), "one run --on",
          median(one), "<= 2x")
    b.row(f"run --on --attempts {sessions}", median(att), "one run --on", median(one), "<= 2x")
