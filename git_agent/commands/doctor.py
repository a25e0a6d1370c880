"""`git agent doctor`: try every protection on this machine and say how to fix what fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from git_agent import session
from git_agent.errors import GitAgentError
from git_agent.sandbox import bwrap as bwrap_mod
from git_agent.settings import config

APPARMOR_PROFILE = "contrib/apparmor/git-agent-bwrap"


@dataclass
class Check:
    name: str
    status: str  # "ok", "warn", "FAIL", "info"
    detail: str
    fix: str = ""


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _try(argv: list[str], **kw: object) -> tuple[bool, str]:
    try:
        p = subprocess.run(argv, capture_output=True, timeout=20, **kw)  # type: ignore[call-overload]
    except (OSError, subprocess.SubprocessError) as e:
        return False, str(e)
    err = p.stderr.decode(errors="replace").strip().splitlines()
    return p.returncode == 0, (err[-1] if err else f"exit {p.returncode}")


def userns_fix() -> str:
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return (
            "AppArmor restricts unprivileged user namespaces (Ubuntu 24.04+): install the profile "
            f"in {APPARMOR_PROFILE} (see contrib/apparmor/README.md), or "
            "`sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`"
        )
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return "`sudo sysctl kernel.unprivileged_userns_clone=1` (and in /etc/sysctl.d/)"
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        return "`sudo sysctl user.max_user_namespaces=15000` (and in /etc/sysctl.d/)"
    return "enable unprivileged user namespaces in the kernel (CONFIG_USER_NS)"


def _bwrap_base(bwrap: Path) -> list[str]:
    return [os.fspath(bwrap), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]


def probe_userns(bwrap: Path) -> Check:
    ok, err = _try([*_bwrap_base(bwrap), "--unshare-user", "--unshare-pid", "--", "true"])
    return Check("user namespaces", "ok" if ok else "FAIL", "work" if ok else err,
                 "" if ok else userns_fix())


def probe_overlay(bwrap: Path) -> Check:
    with tempfile.TemporaryDirectory(prefix="git-agent-doctor-") as tmp:
        t = Path(tmp)
        for d in ("lower", "upper", "work", "dest"):
            (t / d).mkdir()
        ok, err = _try([*_bwrap_base(bwrap), "--unshare-user", "--overlay-src", str(t / "lower"),
                        "--overlay", str(t / "upper"), str(t / "work"), str(t / "dest"),
                        "--", "true"])
    return Check("overlayfs in a user namespace", "ok" if ok else "FAIL",
                 "works" if ok else err,
                 "" if ok else "needs Linux >= 5.11 with overlayfs (modprobe overlay)")


def diagnose(bwrap: Path) -> str | None:
    """After a failed launch: the first missing capability with its fix, in one line."""
    for probe in (probe_userns, probe_overlay):
        c = probe(bwrap)
        if c.status != "ok":
            return f"{c.name} do not work here ({c.detail}); fix: {c.fix}"
    return None


def checks() -> list[Check]:
    out: list[Check] = []
    cfg = config.read(Path.cwd()) if _in_git() else config.GitConfig()
    try:
        bw = bwrap_mod.find(cfg.get_str("agent.bwrap"))
    except GitAgentError as e:
        out.append(Check("bwrap", "FAIL", str(e)))
        return out
    out.append(Check("bwrap", "ok", f"{bw.version_text} from {bw.source}: {bw.path}"))
    base = _bwrap_base(bw.path)
    userns = probe_userns(bw.path)
    out.append(userns)
    if userns.status != "ok":
        return out
    out.append(probe_overlay(bw.path))
    ok, err = _try([*base, "--unshare-user", "--disable-userns", "--", "true"])
    out.append(
        Check(
            "nested user namespaces disabled inside",
            "ok" if ok else "FAIL",
            "works" if ok else err,
            "" if ok else "needs bwrap >= 0.8 and Linux >= 4.9",
        )
    )
    out += _seccomp_check(base)
    out += _landlock_check()
    out += _network_checks()
    tiocsti = _read("/proc/sys/dev/tty/legacy_tiocsti")
    if tiocsti is not None:
        out.append(
            Check(
                "TIOCSTI",
                "info",
                f"dev.tty.legacy_tiocsti={tiocsti}; the seccomp "
                "filter blocks TIOCSTI and TIOCLINUX either way",
            )
        )
    out.append(_apparmor_check())
    out += _store_checks(cfg)
    return out


def _apparmor_check() -> Check:
    restrict = _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    if restrict is None:
        return Check("AppArmor", "info", "no restriction of unprivileged user namespaces here")
    return Check("AppArmor", "info", f"kernel.apparmor_restrict_unprivileged_userns={restrict}"
                 + ("; bwrap needs the profile in " + APPARMOR_PROFILE if restrict == "1" else ""))


def _seccomp_check(base: list[str]) -> list[Check]:
    from git_agent.sandbox import seccomp

    try:
        prog = seccomp.build_filter()
    except GitAgentError as e:
        return [Check("seccomp filter", "FAIL", str(e))]
    r, w = os.pipe()
    os.write(w, prog)
    os.close(w)
    try:
        ok, err = _try([*base, "--unshare-user", "--seccomp", str(r), "--", "true"], pass_fds=[r])
    finally:
        os.close(r)
    return [
        Check(
            "seccomp filter (TIOCSTI, io_uring, keyring, ...)",
            "ok" if ok else "FAIL",
            f"{len(prog) // 8} instructions load" if ok else err,
            "" if ok else "the kernel needs CONFIG_SECCOMP_FILTER",
        )
    ]


def _landlock_check() -> list[Check]:
    from git_agent.sandbox import landlock

    abi = landlock.abi_version()
    if abi >= 6:
        return [Check("Landlock scopes (abstract sockets, signals)", "ok", f"ABI {abi}")]
    return [
        Check(
            "Landlock scopes (abstract sockets, signals)",
            "warn",
            f"ABI {abi or 'missing'}: in --net host the agent can reach host abstract unix "
            "sockets (X11, D-Bus)",
            "Linux >= 6.12 with lsm=...,landlock; or use --net none / --net isolated",
        )
    ]


def _network_checks() -> list[Check]:
    from git_agent.sandbox import network

    name = "--net isolated / filtered (forwarder)"
    try:
        network.check(network.Egress("filtered", [], []))
    except GitAgentError as e:
        return [Check(name, "warn", str(e))]
    return [Check(name, "ok", f"{network.INNER_PYTHON}; no tun device or pasta needed")]


def _store_checks(cfg: config.GitConfig) -> list[Check]:
    out = [Check("session store", "info", str(session.state_root()))]
    home = Path(os.environ.get("HOME", "/"))
    ah = config.expand_home(cfg.get_str("agent.home") or "~/aihome", home)
    out.append(
        Check("agent home", "info", f"{ah}{'' if ah.exists() else ' (created on first run)'}")
    )
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
        print(
            "git agent: this machine cannot sandbox an agent yet (see FAIL above)", file=sys.stderr
        )
    return 1 if failed else 0
