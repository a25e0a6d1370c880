"""A real Podman engine for tests/remote/test_podman*.py: the worker image built by
contrib/podman/build-image (cached by its tag), rootful for root and rootless for the
unprivileged user (its own storage, the image loaded into it once, subuid/subgid ranges added),
containers without a network (`agent.remote.pod.network=none`: no traffic at all).
Skipped only when podman or mmdebstrap is missing, and then a failure when CI=true."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_USER, Actor

CHECKOUT = Path(__file__).resolve().parents[2]
BUILD = CHECKOUT / "contrib/podman/build-image"
# What some hosts need (this project's VMs: no CAP_SYS_RESOURCE, so the default rlimits cannot
# be set, and cgroups in hybrid mode, which crun refuses): used only when the defaults fail.
QUIRKS = ('[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n'
          '[engine]\nruntime = "runc"\n')


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"podman tests cannot run in CI: {why}")
    pytest.skip(why)


def _ensure_ids(user: str) -> None:
    """subuid/subgid ranges: `containers` (rootful --userns=auto) and the test user's
    (rootless), each added after the highest range there when missing."""
    for path in (Path("/etc/subuid"), Path("/etc/subgid")):
        text = path.read_text() if path.exists() else ""
        rows = [ln.split(":") for ln in text.splitlines() if ln.count(":") == 2]
        have = {r[0] for r in rows}
        for name, size in (("containers", 1 << 24), (user, 1 << 20)):
            if name not in have:
                top = max([int(r[1]) + int(r[2]) for r in rows if name != "containers"
                           and r[0] != "containers"] + [1 << 20])
                start = top if name != "containers" else 1 << 30
                rows.append([name, str(start), str(size)])
                text += f"{name}:{start}:{size}\n"
        path.write_text(text)


class Engine:
    """The image and, per actor, the environment its podman needs."""

    def __init__(self, image: str, quirks: Path | None, user_dir: Path, uid: int):
        self.image = image
        self.quirks = quirks
        self.user_dir = user_dir
        self.uid = uid

    def env(self, actor: Actor) -> dict[str, str]:
        env = {"CONTAINERS_CONF": str(self.quirks)} if self.quirks else {}
        if not actor.is_root:
            env |= {"CONTAINERS_STORAGE_CONF": str(self.user_dir / "storage.conf"),
                    "XDG_RUNTIME_DIR": str(self.user_dir / "run")}
        return env

    def podman(self, actor: Actor, *args: str) -> subprocess.CompletedProcess[str]:
        return actor.run(["podman", *args], env=self.env(actor))

    def setup(self, actor: Actor, url: str = "podman://") -> Path:
        """A repository of actor's with the remote `pod` on this engine."""
        actor.env |= self.env(actor)
        repo = actor.make_repo("repo")
        assert actor.agent("remote", "add", "pod", url, cwd=repo).returncode == 0
        actor.git("config", "agent.remote.pod.network", "none", cwd=repo)
        actor.git("config", "agent.remote.pod.image", self.image, cwd=repo)
        return repo

    def leftovers(self, actor: Actor) -> list[str]:
        """git agent's containers of actor's engine that still exist."""
        p = self.podman(actor, "ps", "-a", "--filter", "label=io.git-agent.worker",
                        "--format", "{{.Names}}")
        assert p.returncode == 0, p.stderr
        return p.stdout.split()


def _works(env: dict[str, str], image: str) -> bool:
    return subprocess.run(["podman", "run", "--rm", "--pull=never", "--network=none", image,
                           "true"], env={**os.environ, **env}, capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def podman_engine() -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("the podman harness builds the image as root")
    for tool in ("podman", "mmdebstrap", "newuidmap"):
        if shutil.which(tool) is None:
            _missing(f"{tool} is not installed (apt-get install podman mmdebstrap uidmap)")
    pw = pwd.getpwnam(TEST_USER) if TEST_USER else None
    _ensure_ids(TEST_USER)
    p = subprocess.run([str(BUILD)], env={**os.environ, "GIT_AGENT_PYTHON": sys.executable},
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"contrib/podman/build-image failed:\n{p.stderr[-3000:]}")
    image = p.stdout.strip().splitlines()[-1]
    d = Path(tempfile.mkdtemp(prefix="git-agent-podman-"))
    os.chmod(d, 0o755)
    quirks = None
    if not _works({}, image):
        quirks = d / "containers.conf"
        quirks.write_text(QUIRKS)
        quirks.chmod(0o644)
        if not _works({"CONTAINERS_CONF": str(quirks)}, image):
            _missing("podman cannot run a container here")
    user_dir = d / "user"
    assert pw is not None
    for sub in ("", "run"):
        (user_dir / sub).mkdir(mode=0o700, exist_ok=True)
    (user_dir / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{user_dir}/storage"\n'
        f'runroot = "{user_dir}/runroot"\nrootless_storage_path = "{user_dir}/storage"\n')
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(user_dir)], check=True)
    eng = Engine(image, quirks, user_dir, pw.pw_uid)
    user_env = [f"{k}={v}" for k, v in {
        "HOME": str(user_dir), "PATH": "/usr/bin:/bin", **({"CONTAINERS_CONF": str(quirks)}
                                                         if quirks else {}),
        "CONTAINERS_STORAGE_CONF": str(user_dir / "storage.conf"),
        "XDG_RUNTIME_DIR": str(user_dir / "run")}.items()]
    save = subprocess.Popen(["podman", "save", image], stdout=subprocess.PIPE)
    load = subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                           "--init-groups", "--reset-env", "env", *user_env, "podman", "load"],
                          stdin=save.stdout, capture_output=True, text=True)
    save.wait()
    if load.returncode != 0:
        pytest.fail(f"rootless podman load failed: {load.stderr[-2000:]}")
    try:
        yield eng
    finally:
        subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                        "--init-groups", "--reset-env", "env", *user_env, "podman", "system",
                        "reset", "-f"], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


__all__ = ["Engine", "podman_engine"]
