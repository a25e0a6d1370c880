"""The sandbox as data: bwrap options as small values, turned into argv in one place."""

from __future__ import annotations

import os
from pathlib import Path

from git_agent.record import Record


class Bind(Record):
    __slots__ = ("src", "dest", "ro", "try_", "dev")

    def __init__(
        self, src: Path, dest: Path, ro: bool = True, try_: bool = False, dev: bool = False
    ):
        self.src = src
        self.dest = dest
        self.ro = ro
        self.try_ = try_  # skip silently when src is missing
        self.dev = dev

    def to_args(self) -> list[str]:
        kind = "dev-bind" if self.dev else ("ro-bind" if self.ro else "bind")
        return [f"--{kind}{'-try' if self.try_ else ''}", os.fspath(self.src), os.fspath(self.dest)]


class Symlink(Record):
    __slots__ = ("target", "dest")

    def __init__(self, target: str, dest: Path):
        self.target = target
        self.dest = dest

    def to_args(self) -> list[str]:
        return ["--symlink", self.target, os.fspath(self.dest)]


class Tmpfs(Record):
    __slots__ = ("dest", "mode")

    def __init__(self, dest: Path, mode: int | None = None):
        self.dest = dest
        self.mode = mode

    def to_args(self) -> list[str]:
        perms = ["--perms", f"{self.mode:o}"] if self.mode is not None else []
        return [*perms, "--tmpfs", os.fspath(self.dest)]


class RemountRo(Record):
    __slots__ = ("dest",)

    def __init__(self, dest: Path):
        self.dest = dest

    def to_args(self) -> list[str]:
        return ["--remount-ro", os.fspath(self.dest)]


class Proc(Record):
    __slots__ = ("dest",)

    def __init__(self, dest: Path = Path("/proc")):
        self.dest = dest

    def to_args(self) -> list[str]:
        return ["--proc", os.fspath(self.dest)]


class Dev(Record):
    __slots__ = ("dest",)

    def __init__(self, dest: Path = Path("/dev")):
        self.dest = dest

    def to_args(self) -> list[str]:
        return ["--dev", os.fspath(self.dest)]


class Overlay(Record):
    """A writable overlay: lower layers read-only, writes in upper (work is overlayfs' scratch)."""

    __slots__ = ("lower", "upper", "work", "dest")

    def __init__(self, lower: tuple[Path, ...], upper: Path, work: Path, dest: Path):
        self.lower = lower
        self.upper = upper
        self.work = work
        self.dest = dest

    def to_args(self) -> list[str]:
        args: list[str] = []
        for src in self.lower:
            args += ["--overlay-src", os.fspath(src)]
        return [
            *args,
            "--overlay",
            os.fspath(self.upper),
            os.fspath(self.work),
            os.fspath(self.dest),
        ]


Mount = Bind | Symlink | Tmpfs | RemountRo | Proc | Dev | Overlay


class MountPlan(Record):
    """Everything bwrap is told, in order; `options()` is the only place it becomes arguments."""

    __slots__ = ("mounts", "env", "chdir", "command", "share_net", "disable_userns", "extra",
                 "share_pid")

    def __init__(
        self,
        mounts: list[Mount] | None = None,
        env: dict[str, str] | None = None,
        chdir: Path = Path("/"),
        command: list[str] | None = None,
        share_net: bool = True,
        disable_userns: bool = True,
        extra: list[str] | None = None,
        share_pid: bool = False,
    ):
        self.mounts: list[Mount] = mounts if mounts is not None else []
        self.env: dict[str, str] = env if env is not None else {}
        self.chdir = chdir
        self.command: list[str] = command if command is not None else []
        self.share_net = share_net
        self.disable_userns = disable_userns
        self.extra: list[str] = extra if extra is not None else []  # --seccomp, --info-fd ...
        self.share_pid = share_pid  # tests only: host pids stay visible (no --proc then)

    def but(self, **changes: object) -> MountPlan:
        """A copy with some fields replaced (records are not changed in place)."""
        fields: dict[str, object] = {name: getattr(self, name) for name in self._fields()}
        fields.update(changes)
        return MountPlan(**fields)  # type: ignore[arg-type]

    def options(self) -> list[str]:
        """bwrap's options, without the program path and the command."""
        args = ["--unshare-user"]
        if not self.share_pid:
            args.append("--unshare-pid")
        args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not self.share_net:
            args.append("--unshare-net")
        if self.disable_userns:
            args.append("--disable-userns")
        args += ["--die-with-parent", "--cap-drop", "ALL"]
        for m in self.mounts:
            args += m.to_args()
        args.append("--clearenv")
        for k, v in sorted(self.env.items()):
            args += ["--setenv", k, v]
        args += ["--chdir", os.fspath(self.chdir)]
        return [*args, *self.extra]

    def argv(self, bwrap: Path | str) -> list[str]:
        """The whole command line: options in it (launch passes them on a pipe instead)."""
        return [os.fspath(bwrap), *self.options(), "--", *self.command]




def helper_environ() -> dict[str, str]:
    """The environment of a process the sandbox can see (bwrap, which is the sandbox's pid 1,
    and any helper started inside the sandbox's namespaces): nothing. The agent's own
    environment reaches it through --setenv on a pipe, never through a helper's environ, so
    no variable of git agent's (tokens, SSH_AUTH_SOCK) is in any /proc/PID/environ inside,
    and no LD_PRELOAD/LD_LIBRARY_PATH steers the program that builds the sandbox."""
    return {}
