"""`git agent doctor`: try every protection on this machine and say how to fix what fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from git_agent import session, ui
from git_agent.errors import GitAgentError
from git_agent.sandbox import bwrap as bwrap_mod
from git_agent.sandbox import probes
from git_agent.sandbox.probes import Check
from git_agent.settings import gitconfig, mountspec


def checks() -> list[Check]:
    out: list[Check] = []
    cfg = gitconfig.read(Path.cwd()) if _in_git() else gitconfig.GitConfig()
    try:
        bw = bwrap_mod.find(cfg.get_str("agent.bwrap"))
    except GitAgentError as e:
        out.append(Check("bwrap", "FAIL", str(e)))
        return out
    out.append(Check("bwrap", "ok", f"{bw.version_text} from {bw.source}: {bw.path}"))
    out += probes.sandbox_checks(bw.path)
    if out[-1].status == "FAIL" and out[-1].name == "user namespaces":
        return out
    out += _network_checks()
    tiocsti = probes.read("/proc/sys/dev/tty/legacy_tiocsti")
    if tiocsti is not None:
        out.append(
            Check(
                "TIOCSTI",
                "info",
                f"dev.tty.legacy_tiocsti={tiocsti}; the seccomp "
                "filter blocks TIOCSTI and TIOCLINUX either way",
            )
        )
    out.append(probes.apparmor())
    out += _store_checks(cfg)
    return out


def _network_checks() -> list[Check]:
    from git_agent.sandbox import network

    name = "--net isolated / filtered (forwarder)"
    try:
        network.check(network.Egress("filtered", [], []))
    except GitAgentError as e:
        return [Check(name, "warn", str(e))]
    return [Check(name, "ok", f"{network.INNER_PYTHON}; no tun device or pasta needed")]


def _store_checks(cfg: gitconfig.GitConfig) -> list[Check]:
    out = [Check("session store", "info", str(session.state_root()))]
    home = Path(os.environ.get("HOME", "/"))
    ah = mountspec.expand_home(cfg.get_str("agent.home") or "~/aihome", home)
    out.append(
        Check("agent home", "info", f"{ah}{'' if ah.exists() else ' (created on first run)'}; "
              "each session writes its own copy-on-write layer of it")
    )
    if os.geteuid() == 0:
        out.append(Check(
            "user inside", "warn",
            "the agent runs as root (uid 0) inside the sandbox (it can read what root may in "
            "the read-only system dirs)",
            "run git agent as your own user"))
    for sock in cfg.get_all("agent.allowSocket"):
        what = (
            "every key it holds can sign for the agent"
            if "ssh" in sock
            else "whatever that service lets its clients do"
        )
        out.append(Check("allowed socket", "warn", f"{sock}: {what}"))
    return out


def _in_git() -> bool:
    return (
        shutil.which("git") is not None
        and subprocess.run(
            ["git", "rev-parse", "--git-dir"], capture_output=True, check=False
        ).returncode
        == 0
    )


def main() -> int:
    failed = False
    for c in checks():
        line = f"{c.status:<5} {c.name}: {c.detail}"
        print(line)
        if c.fix:
            print(f"      fix: {c.fix}")
        failed = failed or c.status == "FAIL"
    if failed:
        ui.say("this machine cannot sandbox an agent yet (see FAIL above)")
    return 1 if failed else 0
