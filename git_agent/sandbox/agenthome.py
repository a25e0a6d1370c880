"""The agent home, copy-on-write per session: its overlay, and the declared state carried back.

The shared agent home (`agent.home`) is the overlay's read-only lower layer; everything a
session writes under $HOME lands in `<session dir>/home-upper`, so it is seen by that session
only and goes away with `git agent drop`. After a run, only declared state is copied back into
the shared home: each preset's login files (`Preset.keep`, data keys of `Preset.keep_json`) and
the user's `agent.homeKeep` paths. A copy is made of regular files only, never through a
symlink (every component is opened by fd with O_NOFOLLOW, see beneath.py), bounded in size,
written 0600 (dirs made 0700) whatever the session's modes, without xattrs, and replaces its
target by rename.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from pathlib import Path

from git_agent import beneath
from git_agent.errors import UsageError
from git_agent.record import Record
from git_agent.sandbox.mounts import Overlay
from git_agent.session import Session

MAX_FILE = 256 << 20  # a bigger file stays in the session (said as a warning)
_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")


def upper(session: Session) -> Path:
    """Where the session's writes under $HOME land (inside the session dir: drop removes it)."""
    return session.dir / "home-upper"


def work(session: Session) -> Path:
    return session.dir / "home-work"


def overlay(*, agent_home: Path, home: Path, session: Session) -> Overlay:
    """The shared agent home, read-only, under the session's own upper dir, mounted at $HOME."""
    for d in (upper(session), work(session)):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Overlay((agent_home,), upper(session), work(session), home)


class Keep(Record):
    """One declared path: a whole file or dir tree, or (keys) some top-level keys of a JSON
    object file."""

    __slots__ = ("rel", "keys")

    def __init__(self, rel: str, keys: tuple[str, ...] | None = None):
        self.rel = rel  # relative to $HOME, normalized, no trailing slash
        self.keys = keys


def check_rel(value: str, where: str) -> str:
    """A path inside the home: `PATH`, `~/PATH` or `$HOME/PATH`; never the home, never `..`."""
    raw = value.strip()
    for prefix in ("~/", "$HOME/", "${HOME}/"):
        if raw.startswith(prefix):
            raw = raw[len(prefix):]
            break
    rel = os.path.normpath(raw) if raw else ""
    if not rel or rel == "." or rel.startswith(("/", "..")) or "\0" in rel:
        raise UsageError(f"{where}: {value!r} must name a path inside the agent home")
    return rel


# Agent-home paths that hold code something runs later (shell start-up, git config, PATH dirs,
# agent hooks, MCP servers, plugins): a preset never declares them; only the user can, by name.
CODE_BEARING = (
    ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".bashrc.d",
    ".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zlogout", ".config/fish", ".gitconfig",
    ".config/git", ".inputrc", ".npmrc", ".gemrc", ".ssh", ".pam_environment", ".xprofile",
    ".config/environment.d", ".config/autostart", ".config/systemd", ".local/bin", ".bin",
    ".claude/settings.json", ".claude/settings.local.json", ".claude/hooks", ".claude/commands",
    ".claude/agents", ".claude/plugins", ".codex/config.toml", ".gemini/settings.json",
    ".gemini/extensions", ".config/opencode", ".config/goose/config.yaml", ".qwen/settings.json",
    ".config/crush", ".aider.conf.yml", ".aider/oauth-keys.env", ".cursor/mcp.json",
    ".local/share/opencode/auth.json",  # "wellknown" entries: environment variables, config
)


def code_bearing(rel: str) -> bool:
    return any(_under(rel, c) or _under(c, rel) for c in CODE_BEARING)


def declared(*, keep: tuple[str, ...], keep_json: dict[str, tuple[str, ...]],
             home_keep: list[str]) -> list[Keep]:
    """What is carried back: a preset's files and JSON keys (never a code-bearing path), then
    the user's agent.homeKeep paths (a whole path the user lists wins over JSON keys of it)."""
    user = [check_rel(v, "agent.homeKeep") for v in home_keep]
    out: list[Keep] = []
    candidates = [Keep(rel) for rel in keep if not code_bearing(rel)]
    candidates += [Keep(rel) for rel in user]
    candidates += [Keep(rel, keys) for rel, keys in keep_json.items()
                   if not any(_under(rel, u) for u in user)]
    for k in candidates:
        if k not in out:
            out.append(k)
    return out


def _under(path: str, entry: str) -> bool:
    return path == entry or path.startswith(entry + "/")


def carry_back(*, session: Session, agent_home: Path, keep: list[Keep], lock: Path) -> list[str]:
    """Copy the declared state the session wrote into the shared agent home; returns warnings.
    A file carried back whole leaves the session (it sees the shared copy from now on)."""
    up = upper(session)
    if not keep or not up.is_dir():
        return []
    warnings: list[str] = []
    try:
        _carry_all(up, agent_home, keep, lock, warnings)
    except OSError as e:  # the agent home or the lock: said, and the capture still happens
        warnings.append(f"nothing carried back to the agent home {agent_home}: "
                        f"{e.strerror or e}")
    return warnings


def _carry_all(up: Path, agent_home: Path, keep: list[Keep], lock: Path,
               warnings: list[str]) -> None:
    lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)  # two sessions ending at once: one after the other
        ufd = beneath.open_root(up)
        try:
            hfd = beneath.open_root(os.path.realpath(agent_home))  # the user's: may be a link
            try:
                for k in keep:
                    try:
                        _carry(ufd, hfd, os.fsencode(k.rel), k.keys, warnings)
                    except OSError as e:
                        warnings.append(f"~/{k.rel} not carried back to the agent home: "
                                        f"{e.strerror or e}")
            finally:
                os.close(hfd)
        finally:
            os.close(ufd)
    finally:
        os.close(lock_fd)


def _carry(ufd: int, hfd: int, rel: bytes, keys: tuple[str, ...] | None,
           warnings: list[str]) -> None:
    comps = beneath.parts(rel)
    opaque = False
    fd = os.dup(ufd)
    try:
        for name in comps[:-1]:  # in the upper: the way to it, by fds, never through a symlink
            try:
                st = beneath.lstat(fd, name)
            except FileNotFoundError:
                return  # the session did not write there
            if not stat.S_ISDIR(st.st_mode):
                if not _whiteout(st):
                    warnings.append(f"~/{os.fsdecode(rel)} not carried back: "
                                    f"~/{os.fsdecode(name)} on the way is not a directory")
                return
            opaque = opaque or _is_opaque(fd, name)
            nfd = os.open(name, beneath.DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        name = comps[-1]
        try:
            st = beneath.lstat(fd, name)
        except FileNotFoundError:
            return
        if keys is not None:
            if stat.S_ISREG(st.st_mode):
                _merge_json(fd, name, hfd, comps, keys, warnings)
            return
        _carry_entry(fd, name, st, hfd, comps, opaque, warnings)
    finally:
        os.close(fd)


def _carry_entry(fd: int, name: bytes, st: os.stat_result, hfd: int, comps: list[bytes],
                 opaque: bool, warnings: list[str]) -> None:
    shown = "~/" + os.fsdecode(b"/".join(comps))
    if stat.S_ISDIR(st.st_mode):
        opaque = opaque or _is_opaque(fd, name)
        with beneath.opened_dir(fd, [name]) as dfd:
            for child, cst in beneath.scan(dfd):
                _carry_entry(dfd, child, cst, hfd, [*comps, child], opaque, warnings)
        return
    if _whiteout(st):
        return  # a deletion: deletions stay in the session
    if not stat.S_ISREG(st.st_mode):
        warnings.append(f"{shown} not carried back to the agent home: not a regular file "
                        "(it stays in the session)")
        return
    if st.st_size > MAX_FILE:
        warnings.append(f"{shown} not carried back to the agent home: larger than "
                        f"{MAX_FILE >> 20} MiB (it stays in the session)")
        return
    data = _read(fd, name)
    if data is None:
        return
    if _write(hfd, comps, data, warnings) and not opaque:
        # carried: the session now sees the shared copy (and so anything newer put there
        # later); under an opaque dir the shared one would not show through: it stays
        beneath.unlink(fd, name)


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(dir_fd: int, name: bytes) -> bool:
    x = beneath.xattrs(dir_fd, name, _OPAQUE)
    return any(v == b"y" for v in x.values())


def _read(dir_fd: int, name: bytes) -> bytes | None:
    return beneath.read_regular(dir_fd, name, MAX_FILE)


def _write(hfd: int, comps: list[bytes], data: bytes, warnings: list[str]) -> bool:
    """data as the file comps of the shared home, replacing it by rename; never through a
    symlink; the file is 0600 and made dirs 0700, whatever modes the session gave them (a
    login file the agent made world-readable stays private in the shared home)."""
    shown = "~/" + os.fsdecode(b"/".join(comps))
    try:
        dfd = _open_dirs(hfd, comps[:-1])
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            warnings.append(f"{shown} not carried back: the agent home has a symlink or a "
                            "file on the way")
            return False
        raise
    name = comps[-1]
    tmp = b".%s.git-agent-%d" % (name[:64], os.getpid())
    try:
        with contextlib.suppress(FileNotFoundError):
            beneath.unlink(dfd, tmp)
        wfd = beneath.create(dfd, tmp, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(wfd, view):]
            os.fchmod(wfd, 0o600)  # exactly: not the session's bits, not the umask's
        finally:
            os.close(wfd)
        try:
            # replaces a symlink there, never follows it
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as e:
            beneath.unlink(dfd, tmp)
            if e.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                warnings.append(f"{shown} not carried back: the agent home has a directory there")
                return False
            raise
    finally:
        os.close(dfd)
    return True


def _open_dirs(root: int, comps: list[bytes]) -> int:
    """An fd on comps beneath root, made (0700) where missing, no link followed."""
    return beneath.open_dir(root, comps, made=lambda _: None, mode=0o700)


def _merge_json(fd: int, name: bytes, hfd: int, comps: list[bytes], keys: tuple[str, ...],
                warnings: list[str]) -> None:
    """Only the named top-level keys of the session's JSON object reach the shared file; the
    rest of it (e.g. MCP server commands in ~/.claude.json) stays in the session."""
    shown = "~/" + os.fsdecode(b"/".join(comps))
    mine = _load(_read(fd, name))
    if mine is None:
        warnings.append(f"{shown} not carried back: not a JSON object")
        return
    try:
        with beneath.opened_dir(hfd, comps[:-1]) as dfd:
            st = beneath.lstat(dfd, comps[-1])
            raw = _read(dfd, comps[-1]) if stat.S_ISREG(st.st_mode) else None
            shared = _load(raw)
    except FileNotFoundError:
        shared = {}
    if shared is None:
        warnings.append(f"{shown} not carried back: the agent home's copy is not a JSON object")
        return
    merged = dict(shared)
    merged.update({k: mine[k] for k in keys if k in mine})
    if merged != shared:
        text = json.dumps(merged, indent=2, ensure_ascii=False) + "\n"
        _write(hfd, comps, text.encode(), warnings)


def _load(raw: bytes | None) -> dict[str, object] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
