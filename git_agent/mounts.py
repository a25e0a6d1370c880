"""The sandbox as data: bwrap options as small values, turned into argv in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Bind:
    src: Path
    dest: Path
    ro: bool = True
    try_: bool = False  # skip silently when src is missing
    dev: bool = False

    def to_args(self) -> list[str]:
        kind = "dev-bind" if self.dev else ("ro-bind" if self.ro else "bind")
        return [f"--{kind}{'-try' if self.try_ else ''}", os.fspath(self.src), os.fspath(self.dest)]


@dataclass(frozen=True)
class Symlink:
    target: str
    dest: Path

    def to_args(self) -> list[str]:
        return ["--symlink", self.target, os.fspath(self.dest)]


@dataclass(frozen=True)
class Tmpfs:
    dest: Path
    mode: int | None = None

    def to_args(self) -> list[str]:
        perms = ["--perms", f"{self.mode:o}"] if self.mode is not None else []
        return [*perms, "--tmpfs", os.fspath(self.dest)]


@dataclass(frozen=True)
class RemountRo:
    dest: Path

    def to_args(self) -> list[str]:
        return ["--remount-ro", os.fspath(self.dest)]


@dataclass(frozen=True)
class Proc:
    dest: Path = Path("/proc")

    def to_args(self) -> list[str]:
        return ["--proc", os.fspath(self.dest)]


@dataclass(frozen=True)
class Dev:
    dest: Path = Path("/dev")

    def to_args(self) -> list[str]:
        return ["--dev", os.fspath(self.dest)]


@dataclass(frozen=True)
class Overlay:
    """A writable overlay: lower layers read-only, writes in upper (work is overlayfs' scratch)."""

    lower: tuple[Path, ...]
    upper: Path
    work: Path
    dest: Path

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


@dataclass
class Plan:
    """Everything bwrap is told, in order; `argv()` is the only place it becomes arguments."""

    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    chdir: Path = Path("/")
    command: list[str] = field(default_factory=list)
    share_net: bool = True
    disable_userns: bool = True
    extra: list[str] = field(default_factory=list)  # fd options (--seccomp, --info-fd ...)

    def argv(self, bwrap: Path | str) -> list[str]:
        args = [os.fspath(bwrap)]
        args += ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try"]
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
        args += self.extra
        return [*args, "--", *self.command]
