"""Probes of this machine's sandboxing, each a small mount plan run for real (doctor, run)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from git_agent.errors import GitAgentError
from git_agent.record import Record
from git_agent.sandbox.mounts import Bind, Dev, Mount, MountPlan, Overlay, helper_environ
from git_agent.sandbox.system import proc_mounts

APPARMOR_PROFILE = "contrib/apparmor/git-agent-bwrap"


class Check(Record):
    __slots__ = ("name", "status", "detail", "fix")

    def __init__(self, name: str, status: str, detail: str, fix: str = ""):
        self.name = name
        self.status = status  # "ok", "warn", "FAIL", "info"
        self.detail = detail
        self.fix = fix


def read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _system(*more: Mount, disable_userns: bool = False, extra: list[str] | None = None
            ) -> MountPlan:
    """The smallest sandbox: the host read-only, a /dev, more mounts; `true` as the command."""
    return MountPlan(mounts=[Bind(Path("/"), Path("/")), Dev(), *more], command=["true"],
                     disable_userns=disable_userns, extra=extra)


def _try(plan: MountPlan, bwrap: Path, pass_fds: tuple[int, ...] = ()) -> tuple[bool, str]:
    try:
        p = subprocess.run(plan.argv(bwrap), capture_output=True, timeout=20, pass_fds=pass_fds,
                           env=helper_environ(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return False, str(e)
    err = p.stderr.decode(errors="replace").strip().splitlines()
    return p.returncode == 0, (err[-1] if err else f"exit {p.returncode}")


def userns_fix() -> str:
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return (
            "AppArmor restricts unprivileged user namespaces (Ubuntu 24.04+): install the profile "
            f"in {APPARMOR_PROFILE} (see contrib/apparmor/README.md), or "
            "`sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`"
        )
    if read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return "`sudo sysctl kernel.unprivileged_userns_clone=1` (and in /etc/sysctl.d/)"
    if read("/proc/sys/user/max_user_namespaces") == "0":
        return "`sudo sysctl user.max_user_namespaces=15000` (and in /etc/sysctl.d/)"
    return "enable unprivileged user namespaces in the kernel (CONFIG_USER_NS)"


def probe_userns(bwrap: Path) -> Check:
    # the sandbox's /proc as a run makes it: its kernel settings read-only over it
    ok, err = _try(_system(*proc_mounts(None)), bwrap)
    return Check("user namespaces", "ok" if ok else "FAIL", "work" if ok else err,
                 "" if ok else userns_fix())


def probe_overlay(bwrap: Path) -> Check:
    """An overlay with its upper dir where sessions keep theirs: in the session store (the
    temp dir may take an upper dir where the store cannot, or the other way round)."""
    from git_agent import session

    name = "overlayfs in a user namespace"
    store = session.state_root()
    try:
        store.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = tempfile.TemporaryDirectory(prefix=".doctor-", dir=store)
    except OSError as e:
        return Check(name, "FAIL", f"cannot make a directory in the session store {store} "
                     f"({e.strerror})", "make it writable, or set XDG_STATE_HOME elsewhere")
    with tmp:
        t = Path(tmp.name)
        for d in ("lower", "upper", "work", "dest"):
            (t / d).mkdir()
        overlay = Overlay((t / "lower",), t / "upper", t / "work", t / "dest")
        ok, err = _try(_system(overlay), bwrap)
    return Check(name, "ok" if ok else "FAIL",
                 f"works with its upper dir in {store}" if ok else f"{err} (upper dir in {store})",
                 "" if ok else "needs Linux >= 5.11 with overlayfs (modprobe overlay), and a "
                 "session store on a filesystem that can hold an upper dir (XDG_STATE_HOME)")


def probe_nested_userns(bwrap: Path) -> Check:
    ok, err = _try(_system(disable_userns=True), bwrap)
    return Check("nested user namespaces disabled inside", "ok" if ok else "FAIL",
                 "works" if ok else err, "" if ok else "needs bwrap >= 0.8 and Linux >= 4.9")


def diagnose(bwrap: Path) -> str | None:
    """After a failed launch: the first missing capability with its fix, in one line."""
    for probe in (probe_userns, probe_overlay):
        c = probe(bwrap)
        if c.status != "ok":
            return f"{c.name} do not work here ({c.detail}); fix: {c.fix}"
    return None


def probe_seccomp(bwrap: Path) -> Check:
    from git_agent.sandbox import seccomp

    name = "seccomp filter (TIOCSTI, set-uid bits, io_uring, keyring, ...)"
    try:
        prog = seccomp.build_filter()
    except GitAgentError as e:
        return Check(name, "FAIL", str(e))
    r, w = os.pipe()
    os.write(w, prog)
    os.close(w)
    try:
        ok, err = _try(_system(extra=["--seccomp", str(r)]), bwrap, pass_fds=(r,))
    finally:
        os.close(r)
    return Check(name, "ok" if ok else "FAIL",
                 f"{len(prog) // 8} instructions load" if ok else err,
                 "" if ok else "the kernel needs CONFIG_SECCOMP_FILTER")


def probe_landlock() -> Check:
    from git_agent.sandbox import landlock

    name = "Landlock scopes (abstract sockets, signals)"
    abi = landlock.abi_version()
    if abi >= landlock.SCOPE_MIN_ABI:
        return Check(name, "ok", f"ABI {abi}")
    return Check(name, "warn",
                 f"ABI {abi or 'missing'}: in --net host the agent can reach host abstract unix "
                 "sockets (X11, D-Bus)",
                 "Linux >= 6.12 with lsm=...,landlock; or use --net none / --net isolated")


def apparmor() -> Check:
    restrict = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    if restrict is None:
        return Check("AppArmor", "info", "no restriction of unprivileged user namespaces here")
    return Check("AppArmor", "info", f"kernel.apparmor_restrict_unprivileged_userns={restrict}"
                 + ("; bwrap needs the profile in " + APPARMOR_PROFILE if restrict == "1" else ""))


def sandbox_checks(bwrap: Path) -> list[Check]:
    """Every probe of bwrap's abilities, in the order doctor shows them (stops at no userns)."""
    userns = probe_userns(bwrap)
    if userns.status != "ok":
        return [userns]
    return [userns, probe_overlay(bwrap), probe_nested_userns(bwrap), probe_seccomp(bwrap),
            probe_landlock()]
