"""Credentials inside the real-home toolchain dirs mounted into the sandbox, found at any depth
by file name and by the known paths where tools keep them: each is masked inside."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

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
_NAMES = frozenset(SECRET_NAMES)
_TAILS = frozenset(os.path.basename(p) for p in SECRET_PATHS)

# A directory whose ctime is this recent when it is read may change again within the same
# timestamp tick: it is read again next time, not trusted from the cache ("racy git").
RACY_NS = 2_000_000_000
# Directories of installed packages: their files are the packages', never your settings, and
# they are most of a toolchain's directories (a pyenv's site-packages: 2 in 3).
PACKAGE_DIRS = frozenset(("site-packages", "dist-packages", "node_modules"))
# Install and cache trees of the toolchains mounted by default (as paths from the home): the
# software they installed and the packages they fetched, and most of a toolchain's directories
# (~/.rustup's and ~/.pyenv's installs: 15,000 here). An install may hold settings near its
# top (a node's etc/npmrc, a Python's pip.conf): such a tree is looked into INSTALL_DEPTH
# levels deep only.
INSTALL_DEPTH = 3
INSTALL_TREES = (
    ".rustup/toolchains", ".rustup/downloads", ".rustup/tmp", ".cargo/registry", ".cargo/git",
    ".pyenv/versions", ".pyenv/cache", ".nvm/versions", ".nvm/.cache", ".asdf/installs",
    ".asdf/downloads", ".local/share/mise/installs", ".m2/repository", ".gradle/caches",
    ".gradle/wrapper/dists", ".npm/_cacache", ".bun/install/cache", ".deno/npm",
    ".ghcup/ghc", ".sdkman/candidates", ".volta/tools/image", ".local/share/pnpm/store",
)


def is_secret(path: str) -> bool:
    """Whether a file at this path (as the host has it) is one of the known credentials."""
    name = os.path.basename(path)
    return name in _NAMES or (name in _TAILS and any(path.endswith("/" + p)
                                                     for p in SECRET_PATHS))


def find_secrets(dirs: Sequence[Path], cache: Path | None = None) -> list[Path]:
    """The credential files below the mounted dirs, at the paths they have inside (a symlink
    named like one stands for the file it leads to, when that file is inside a mounted dir).

    Every directory is looked at, at any depth; one whose inode, mtime and ctime are as the
    last scan (in `cache`) saw them has the same names, so only its subdirectories are listed
    again from there: a toolchain of 120,000 files and 3,000 dirs costs 3,000 lstat calls."""
    tops = [d for d in dirs if d.is_dir()]
    if not tops:
        return []
    before = _load(cache)
    after: dict[str, object] = {}
    found: list[str] = []
    now = time.time_ns()
    # (dir, is a mounted dir, levels still to look into; -1: no limit)
    stack = [(os.fspath(t), True, -1) for t in reversed(tops)]
    while stack:
        d, top, depth = stack.pop()
        try:
            st = os.stat(d) if top else os.lstat(d)  # a mounted dir may itself be a link
        except OSError:
            continue
        key = [st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
        known = _known(before.get(d), key)
        subdirs, hits = known if known is not None else _list(d)
        if now - st.st_ctime_ns > RACY_NS:
            after[d] = [key, subdirs, hits]
        found += [f"{d}/{h}" for h in hits]
        if depth != 0:
            stack += [(f"{d}/{s}", False, _depth(f"{d}/{s}", depth)) for s in reversed(subdirs)
                      if s not in PACKAGE_DIRS]
    if cache is not None and after != before:
        _save(cache, after)
    out: list[Path] = []
    for path in found:
        dest = _inside(path, tops)
        if dest is not None and dest not in out:
            out.append(dest)
    return out


def _depth(path: str, parent: int) -> int:
    """How many more levels below path to look into: INSTALL_DEPTH at an install tree."""
    if parent > 0:
        return parent - 1
    return INSTALL_DEPTH if any(path.endswith("/" + t) for t in INSTALL_TREES) else -1


def _list(d: str) -> tuple[list[str], list[str]]:
    """A directory's subdirectories (not links to them) and its entries named as secrets."""
    subdirs: list[str] = []
    hits: list[str] = []
    try:
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    subdirs.append(e.name)
                elif is_secret(os.path.join(d, e.name)):
                    hits.append(e.name)
    except OSError:
        pass  # unreadable here, unreadable inside (the agent runs with the caller's rights)
    return subdirs, hits


def _load(cache: Path | None) -> dict[str, object]:
    """The last scan: {dir: [[ino, mtime_ns, ctime_ns], subdirs, hits]}."""
    if cache is None:
        return {}
    try:
        data = json.loads(cache.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _known(entry: object, key: list[int]) -> tuple[list[str], list[str]] | None:
    """A directory's subdirectories and secrets from the last scan, if it is unchanged since
    (and the entry is of the shape _save writes: anything else is listed again)."""
    if not (isinstance(entry, list) and len(entry) == 3 and entry[0] == key):
        return None
    subdirs, hits = entry[1], entry[2]
    if (type(subdirs) is list and type(hits) is list  # noqa: E721 (exactly as json gives them)
            and all(type(x) is str for x in subdirs) and all(type(x) is str for x in hits)):
        return subdirs, hits
    return None


def _save(cache: Path, scan: dict[str, object]) -> None:
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
    with contextlib.suppress(OSError):  # no cache: the next run lists every dir again
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(scan, f, separators=(",", ":"))
        os.replace(tmp, cache)


def _inside(path: str, tops: list[Path]) -> Path | None:
    """Where to mask it: the file itself, or, for a link, the regular file it leads to as the
    sandbox sees it (a target outside every mounted dir is not there inside)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISLNK(st.st_mode):
        return Path(path) if stat.S_ISREG(st.st_mode) else None
    target = Path(os.path.realpath(path))
    if not target.is_file():
        return None
    for top in tops:
        real = Path(os.path.realpath(top))
        if within(target, real):
            return top / target.relative_to(real)
    return None
