"""Credentials inside the real-home toolchain dirs mounted into the sandbox, found at any depth
by file name and by the known paths where tools keep them: each is masked inside."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from git_agent import proc
from git_agent.repo import within

# A file of one of these names, at any depth below a mounted dir.
SECRET_NAMES = (
    "credentials.toml", ".credentials.toml",  # cargo
    "credentials",  # cargo (old), aws, gem
    ".credentials",  # ivy (~/.ivy2/.credentials), sbt (~/.sbt/.credentials)
    "auth.json",  # composer
    "hosts.yml",  # gh
    ".npmrc", "npmrc", ".yarnrc.yml",  # npm (a global prefix keeps etc/npmrc), yarn 2+
    ".pypirc", "pip.conf", "pip.ini",  # twine, pip (index URLs with passwords)
    ".netrc", ".git-credentials",
    "credentials.tfrc.json", ".terraformrc", "terraform.rc",  # terraform
    "NuGet.Config", "nuget.config",  # NuGet
    ".dockercfg",  # docker (old)
    ".vault-token", ".pgpass", ".my.cnf",
    "application_default_credentials.json", "credentials.db", "access_tokens.db",  # gcloud
    "accessTokens.json", "msal_token_cache.json",  # azure
)
# A file at one of these paths (relative to the home; matched as the end of its path), where
# the name alone says too little.
SECRET_PATHS = (
    ".m2/settings.xml", ".m2/settings-security.xml",  # maven servers, master password
    ".gradle/gradle.properties",  # signing and repository passwords
    ".cargo/config.toml", ".cargo/config",  # [registry] token
    ".docker/config.json",  # auths
    ".kube/config",  # cluster tokens, client keys
    ".bundle/config",  # BUNDLE_<host> credentials
    ".config/hub",  # hub's GitHub token
    ".ivy2/.credentials", ".sbt/.credentials",
)


def is_secret(path: str) -> bool:
    """Whether a file at this path (as the host has it) is one of the known credentials."""
    return (os.path.basename(path) in SECRET_NAMES
            or any(path.endswith("/" + p) for p in SECRET_PATHS))


_started: tuple[tuple[Path, ...], subprocess.Popen[bytes]] | None = None


def start_scan(dirs: Sequence[Path]) -> None:
    """Start find early, on the other core, while launch does its git calls; find_secrets
    reads it when it is asked about the same dirs."""
    global _started
    tops = tuple(d for d in dirs if d.is_dir())
    argv = _find_argv(list(tops)) if tops and _started is None else None
    if argv:
        with contextlib.suppress(OSError):  # then find_secrets runs it (or walks) itself
            _started = (tops, subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.PIPE,
                                               stderr=subprocess.DEVNULL))


def find_secrets(dirs: Sequence[Path]) -> list[Path]:
    """The credential files below the mounted dirs, at the paths they have inside (a symlink
    named like one stands for the file it leads to, when that file is inside a mounted dir)."""
    global _started
    tops = [d for d in dirs if d.is_dir()]
    started, _started = _started, None
    found: list[str] | None = None
    if started is not None:
        listed, _ = started[1].communicate()
        if started[0] == tuple(tops):
            found = _listed(listed)
    if not tops:
        return []
    if found is None:
        found = _find(tops)
    if found is None:
        found = _walk(tops)
    out: list[Path] = []
    for path in found:
        dest = _inside(path, tops)
        if dest is not None and dest not in out:
            out.append(dest)
    return out


def _find_argv(tops: list[Path]) -> list[str] | None:
    """find(1) lists them (~2 µs an entry; a Python walk costs ~5 times that): names and links
    by name, not following links below the mounted dirs (-H: a mounted dir may be a link)."""
    find = proc.which("find")  # not a relative PATH entry: this may run as root
    if not find:
        return None
    tests: list[str] = []
    for name in SECRET_NAMES:
        tests += ["-name", name, "-o"]
    for rel in SECRET_PATHS:
        tests += ["-path", "*/" + rel, "-o"]
    return [find, "-H", *map(os.fspath, tops), "-mindepth", "1",
            "(", "-type", "f", "-o", "-type", "l", ")", "(", *tests[:-1], ")", "-print0"]


def _find(tops: list[Path]) -> list[str] | None:
    argv = _find_argv(tops)
    if argv is None:
        return None
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, check=False)
    except OSError:
        return None
    return _listed(p.stdout)


def _listed(out: bytes) -> list[str]:
    # an unreadable dir below (find exits 1) is as unreadable inside: what find listed is all
    return [os.fsdecode(x) for x in out.split(b"\0") if x]


def _walk(tops: list[Path]) -> list[str]:
    out: list[str] = []
    for top in tops:
        for dirpath, _dirs, files in os.walk(top):  # links to dirs are not followed
            out += [os.path.join(dirpath, f) for f in files if
                    is_secret(os.path.join(dirpath, f))]
            out += [os.path.join(dirpath, d) for d in _dirs
                    if os.path.islink(os.path.join(dirpath, d))
                    and is_secret(os.path.join(dirpath, d))]
    return out


def _inside(path: str, tops: list[Path]) -> Path | None:
    """Where to mask it: the file itself, or, for a link, the regular file it leads to as the
    sandbox sees it (a target outside every mounted dir is not there inside)."""
    if not os.path.islink(path):
        return Path(path) if os.path.isfile(path) else None
    target = Path(os.path.realpath(path))
    if not target.is_file():
        return None
    for top in tops:
        real = Path(os.path.realpath(top))
        if within(target, real):
            return top / target.relative_to(real)
    return None
