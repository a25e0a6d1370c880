"""Build the mount plan of a session's sandbox: system read-only, agent home, worktree overlay."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import quote  # pathlib imports it anyway

from git_agent.errors import SandboxUnavailable, UsageError
from git_agent.record import Record
from git_agent.repo import Worktree, within
from git_agent.sandbox import agenthome, homealias, toolchain
from git_agent.sandbox.mounts import (
    Bind,
    Mount,
    MountPlan,
    Overlay,
    RemountRo,
    Tmpfs,
)
from git_agent.sandbox.system import system_mounts
from git_agent.sandbox.welcome import STARTUP
from git_agent.session import Session
from git_agent.settings import mountspec

# bash reads the first of .bash_profile, .bash_login, .profile: an empty one made to protect it
# would hide .profile, so it says what bash would have done.
LOGIN_FALLBACK = (
    "# made by git agent (read-only inside the sandbox)\n[ -r ~/.profile ] && . ~/.profile\n"
)

# Passed into the sandbox when set; everything else needs --pass-env / agent.passEnv.
ENV_ALLOW = (
    "PATH",
    "TERM",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "COLUMNS",
    "LINES",
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
    "TERMINFO",
    "LESS",
    "MANPAGER",
)


class HomeMount(Record):
    __slots__ = ("path", "mode")

    def __init__(self, path: Path, mode: str):
        self.path = path  # on the host, at the same path inside
        self.mode = mode  # "ro", "cow" or "rw"


class Options(Record):
    """Plain data for one launch; run.py fills it from flags and git config."""

    __slots__ = (
        "worktree", "session", "home", "agent_home", "state_root", "command", "home_mounts",
        "protect", "hide", "allow_sockets", "env", "net", "empty_file",
    )

    def __init__(
        self,
        *,
        worktree: Worktree,
        session: Session,
        home: Path,
        agent_home: Path,
        state_root: Path,
        command: list[str],
        home_mounts: list[HomeMount] | None = None,
        protect: list[str] | None = None,
        hide: list[Path] | None = None,
        allow_sockets: list[Path] | None = None,
        env: dict[str, str] | None = None,
        net: str = "host",
        empty_file: Path | None = None,
    ):
        self.worktree = worktree
        self.session = session
        self.home = home  # the real $HOME: where the agent home is mounted
        self.agent_home = agent_home
        self.state_root = state_root
        self.command = command
        self.home_mounts: list[HomeMount] = home_mounts or []
        self.protect: list[str] = protect or []
        self.hide: list[Path] = hide or []  # absolute, inside the worktree
        self.allow_sockets: list[Path] = allow_sockets or []
        self.env: dict[str, str] = env or {}  # final environment inside
        self.net = net
        self.empty_file = empty_file  # a 0-byte read-only file to mask secrets with


def parse_home_mounts(
    specs: list[str], *, home: Path, explicit: set[str]
) -> tuple[list[HomeMount], list[str]]:
    """`PATH[:ro|:cow|:rw]` (relative to $HOME), later wins, `!PATH` removes; returns warnings."""
    chosen: dict[Path, str] = {}
    warnings: list[str] = []
    for spec in specs:
        remove, path, mode = mountspec.parse_mount(spec, home)
        chosen.pop(path, None)
        if not remove:
            chosen[path] = mode
    asked = {mountspec.parse_mount(spec, home)[1] for spec in explicit}  # not just a default
    mounts = []
    for path, mode in chosen.items():
        if not os.path.lexists(path):
            if path in asked:
                warnings.append(f"mount {path}: does not exist, skipped")
            continue
        if mode == "cow" and not path.is_dir():
            raise UsageError(f"mount {path}:cow: copy-on-write needs a directory")
        mounts.append(HomeMount(path=path, mode=mode))
    return mounts, warnings


def _ensure_protected(agent_home: Path, entry: str) -> Path:
    """The shared agent-home file or dir to mount read-only (agent.protect), created empty when
    missing."""
    is_dir = entry.endswith("/")
    rel = entry.rstrip("/")
    if not rel or rel.startswith("/") or ".." in Path(rel).parts:
        raise UsageError(f"agent.protect: {entry!r} must be a path inside the agent home")
    path = agent_home / rel
    if os.path.lexists(path):
        if not path.exists():
            raise SandboxUnavailable(
                f"{path} is a dangling symlink; remove it (it is protected read-only inside)"
            )
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        path.mkdir(mode=0o700)
    else:
        path.write_text(LOGIN_FALLBACK if rel in (".bash_profile", ".bash_login")
                        else STARTUP.get(rel, ""))
    return path


def _check_no_symlink_components(roots: tuple[Path, ...], rel: Path) -> None:
    """A symlink in the agent home (the shared one, or the session's own upper dir) on the way
    to a mount point could redirect it."""
    for root in roots:
        p = root
        for part in rel.parts[:-1]:
            p = p / part
            if p.is_symlink():
                raise SandboxUnavailable(
                    f"{p} is a symlink on the way to a mount point; remove it from the agent home"
                )


def _home_roots(opts: Options) -> tuple[Path, ...]:
    return (opts.agent_home, agenthome.upper(opts.session))


def home_mounts(opts: Options) -> list[Mount]:
    """$HOME is the shared agent home under the session's own copy-on-write layer, then the
    real-home toolchain dirs, then agent.protect's read-only paths."""
    home, ah = opts.home, opts.agent_home
    ms: list[Mount] = [agenthome.overlay(agent_home=ah, home=home, session=opts.session)]
    mounted: list[Path] = []
    for hm in opts.home_mounts:
        if within(home, hm.path) or within(opts.state_root, hm.path) or within(ah, hm.path):
            raise UsageError(
                f"mount {hm.path}: it would expose the real home, the agent home "
                "or the session store"
            )
        if within(hm.path, home):
            _check_no_symlink_components(_home_roots(opts), hm.path.relative_to(home))
        if hm.mode == "cow":
            d = opts.session.cow_dir / quote(str(hm.path), safe="")
            (d / "upper").mkdir(parents=True, exist_ok=True, mode=0o700)
            (d / "work").mkdir(parents=True, exist_ok=True, mode=0o700)
            ms.append(Overlay((hm.path,), d / "upper", d / "work", hm.path))
        else:
            ms.append(Bind(hm.path, hm.path, ro=hm.mode != "rw"))
        mounted.append(hm.path)
    if opts.empty_file is not None:  # credentials inside the toolchain dirs, at any depth
        found = toolchain.find_secrets(mounted, cache=opts.state_root / "toolchain-scan.json")
        ms += [Bind(opts.empty_file, secret) for secret in found]
    for entry in opts.protect:
        dest = home / entry.rstrip("/")
        if any(within(dest, m) for m in mounted):
            continue  # it comes from the real home, read-only or by the user's explicit choice
        _check_no_symlink_components(_home_roots(opts), dest.relative_to(home))
        ms.append(Bind(_ensure_protected(ah, entry), dest))
    return ms


def worktree_mounts(opts: Options) -> list[Mount]:
    wt, s = opts.worktree, opts.session
    if within(wt.root, opts.home):
        _check_no_symlink_components(_home_roots(opts), wt.root.relative_to(opts.home) / "x")
    ms: list[Mount] = [Overlay((wt.root,), s.upper, s.work, wt.root)]
    _mode_of(wt.root, s.upper)
    if not wt.dot_git_inside:
        for d in (s.git_upper, s.git_work):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        _mode_of(wt.common_dir, s.git_upper)
        ms.append(Overlay((wt.common_dir,), s.git_upper, s.git_work, wt.common_dir))
    for path in opts.hide:
        if path.is_symlink():
            raise UsageError(f"--hide {path}: is a symlink; hide what it points to instead")
        if path.is_dir():
            ms += [Tmpfs(path, mode=0o755), RemountRo(path)]
        elif opts.empty_file is not None:
            ms.append(Bind(opts.empty_file, path))
    return ms


def _mode_of(lower: Path, upper: Path) -> None:
    """An overlay's root shows its upper dir's mode: give it the real dir's (0755 stays 0755
    inside; the session folder above it stays 0700, so nobody else reaches it)."""
    mode = stat.S_IMODE(lower.stat().st_mode)
    if stat.S_IMODE(upper.stat().st_mode) != mode:
        os.chmod(upper, mode)


def socket_mounts(opts: Options) -> list[Mount]:
    ms: list[Mount] = []
    for sock in opts.allow_sockets:
        try:
            st = os.stat(sock)
        except OSError as e:
            raise UsageError(f"--allow-socket {sock}: {e.strerror}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise UsageError(f"--allow-socket {sock}: not a unix socket")
        ms.append(Bind(sock, sock))
    return ms


def check_store_hidden(opts: Options, mounts: list[Mount]) -> None:
    """No mount may lead to the session store: other sessions' uppers must stay unreachable."""
    for m in mounts:
        srcs: tuple[Path, ...] = ()
        if isinstance(m, Bind):
            srcs = (m.src,)
        elif isinstance(m, Overlay):
            srcs = m.lower
        for src in srcs:
            if src == opts.empty_file:
                continue
            real = Path(os.path.realpath(src))
            if within(opts.state_root, real) or within(real, opts.state_root):
                raise SandboxUnavailable(
                    f"the session store {opts.state_root} would be visible inside through {src}; "
                    "set XDG_STATE_HOME outside it"
                )


def check_layout(*, worktree: Worktree, home: Path, agent_home: Path, state_root: Path) -> None:
    """Refuse places that would defeat the sandbox, before anything is created. Compared as
    real paths: a symlink must not lead around these checks."""
    real = os.path.realpath
    root, common = Path(real(worktree.root)), Path(real(worktree.common_dir))
    me = os.geteuid()
    for place in (root, common):
        # as git's safe.directory: root writing objects and refs into another user's .git
        # leaves files that user cannot change (and a user cannot map another uid anyway)
        owner = place.stat().st_uid
        if owner != me:
            what = "worktree" if place == root else f"repository {place}"
            raise SandboxUnavailable(f"{what} owned by uid {owner}; run git agent as that user")
    ah, h, store = Path(real(agent_home)), Path(real(home)), Path(real(state_root))
    _check_home_owner(agent_home, ah, me)
    if within(store, root):
        raise SandboxUnavailable(
            f"the session store {state_root} is inside the worktree; set XDG_STATE_HOME elsewhere"
        )
    for place in (root, common):
        # mounted at $HOME, an agent home holding the worktree would show the real files at
        # another path, writable; one inside the worktree would be the worktree itself
        if within(place, ah) or within(ah, place):
            raise UsageError(
                f"agent home {agent_home} overlaps {place}; choose a home outside the "
                "repository (git config agent.home)"
            )
    if within(h, ah):
        raise UsageError(f"agent home {agent_home} must not be or contain the real home")
    if within(store, ah) or within(ah, store):
        raise UsageError(f"agent home {agent_home} overlaps the session store {state_root}")


def _check_home_owner(agent_home: Path, real: Path, me: int) -> None:
    """The agent home is $HOME inside: its shell start-up files, git config and agent settings
    run there. It must be the caller's, and every directory above it the caller's or root's
    (another owner of one could rename it away and put theirs in its place); where it does not
    exist yet, the same holds for the directories it would be made in."""
    for place in (real, *real.parents):
        try:
            owner = place.stat().st_uid
        except FileNotFoundError:
            continue  # made by git agent, as the caller
        if owner != me and (place == real or owner != 0):
            raise SandboxUnavailable(
                f"agent home {agent_home}: {place} is owned by uid {owner}; use a home of your "
                "own (--home, git config agent.home)"
            )


def build_plan(opts: Options) -> MountPlan:
    check_layout(worktree=opts.worktree, home=opts.home, agent_home=opts.agent_home,
                 state_root=opts.state_root)
    mounts = system_mounts(opts.empty_file)
    mounts += home_mounts(opts)
    mounts += worktree_mounts(opts)
    mounts += socket_mounts(opts)
    check_store_hidden(opts, mounts)
    return MountPlan(
        mounts=mounts,
        env=dict(opts.env),
        chdir=opts.worktree.cwd,
        command=list(opts.command),
        share_net=opts.net == "host",
    )


def environment(
    *, home: Path, session: str, pass_env: list[str], set_env: dict[str, str]
) -> dict[str, str]:
    """The allow-listed environment, the names asked for, and what the sandbox sets itself."""
    env: dict[str, str] = {}
    for k, v in os.environ.items():
        if k in ENV_ALLOW or k.startswith("LC_") or k in pass_env:
            env[k] = v
    env.update(set_env)
    env["HOME"] = str(home)
    env["GIT_AGENT_SESSION"] = session
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return env


def alias_home(plan: MountPlan, *, home: Path, alias: Path | None) -> tuple[MountPlan, bool]:
    """HOME at the caller's own path on a remote, when it can be (homealias.py)."""
    return homealias.apply(plan, home=home, alias=alias)
