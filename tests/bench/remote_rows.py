"""The benchmark's remote rows (issue #17, docs/remote.md): `run --on` through the tests' loopback
sshd (tests/remote/sshd.py, started here once) against the same run locally, and the size of the
incremental bundles both ways. Root only (sshd switches users); skipped otherwise."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.remote.sshd

from tests.remote import sshd as harness  # noqa: E402

Bench = Any  # bench.Bench (bench.py is the script that imports this module)


def _sizes(stderr: bytes) -> tuple[int, int]:
    """The bytes of the base bundle sent and of agent/S received (GIT_AGENT_DEBUG's lines)."""
    text = stderr.decode(errors="replace")
    sent = re.search(r"debug: base bundle sent: (\d+) bytes", text)
    got = re.search(r"debug: \S+ bundle received: (\d+) bytes", text)
    if sent is None or got is None:
        raise SystemExit(f"bench: run --on said no bundle sizes:\n{text}")
    return int(sent.group(1)), int(got.group(1))


def m_remote(b: Bench, n: int, make_repo: Callable[[Bench, Path, int], None],
             median: Callable[[list[float]], float]) -> None:
    print(f"remote (run --on through sshd on 127.0.0.1, {n:,}-file repo, the agent `true`, warm):")
    try:
        ctx = harness.running()
        sshd = ctx.__enter__()
    except harness.Unavailable as e:
        print(f"  skipped: {e}")
        return
    try:
        repo = b.root / "remote-repo"
        make_repo(b, repo, n)
        conf = sshd.client(b.root)
        b.git("config", "agent.sshConfig", str(conf), cwd=repo)
        b.run(["git", "agent", "remote", "add", "box", sshd.url], cwd=repo)
        env = {**b.env, "GIT_AGENT_DEBUG": "1"}

        def run(*argv: str) -> tuple[float, bytes]:
            t = time.perf_counter()
            p = b.run(["git", "agent", "run", *argv], cwd=repo, env=env)
            return time.perf_counter() - t, p.stderr

        for _ in range(2):  # the remote store, its worktree, doctor: all there after this
            run("--on", "box", "-s", "rwarm", "--", "true")
            run("-s", "lwarm", "--", "true")
        ours, local = [], []
        for _ in range(b.rounds):
            ours.append(run("--on", "box", "-s", "rwarm", "--", "true")[0])
            local.append(run("-s", "lwarm", "--", "true")[0])
            b.settle()
        over = median(ours) - median(local)
        b.row("run --on box (warm), agent `true`", median(ours), "the same run locally",
              median(local), f"+{over * 1000:.0f} ms (goal <= +500 ms)")
        _, err = run("--on", "box", "-s", "rwarm", "--", "true")
        sent, got = _sizes(err)
        print(f"  {'bundles when nothing changed: in / back':<44} {sent:>6} B / {got} B"
              f"{'':<18}(goal <= 1 KB each)")
        f = repo / "d000" / "s0" / "f000000.txt"
        with f.open("a") as h:
            h.write("edited here\n")
        _, err = run("--on", "box", "-s", "rwarm", "--", "sh", "-c",
                     "echo by the agent >> d000/s0/f000001.txt")
        sent, got = _sizes(err)
        print(f"  {'bundles, one file edited each way: in / back':<44} {sent:>6} B / {got} B"
              f"{'':<18}(goal <= 1 KB each)", flush=True)
    finally:
        ctx.__exit__(None, None, None)
