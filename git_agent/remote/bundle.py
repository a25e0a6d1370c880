"""Session branches as git bundles: the base sent out, and `agent/S` taken back from an untrusted
remote only when every check passes (docs/remote.md, "The bundle checks").

Back: the bundle is read as data (its header parsed here, not by git), its pack indexed by
`git index-pack --strict --fix-thin` into a quarantine object dir beside the repository's
(GIT_OBJECT_DIRECTORY + GIT_ALTERNATE_OBJECT_DIRECTORIES, as receive-pack does), its history
walked and its new trees checked with capture's name rules (sandboxgit.Importer), and only then
the pack moved into the repository's store and the branch set. A refusal leaves the repository
as it was: the quarantine is removed, no object of the bundle arrives.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pygit2

from git_agent import proc
from git_agent.capture.sandboxgit import Importer, Unimportable
from git_agent.errors import GitAgentError
from git_agent.gittree import MAX_BLOB
from git_agent.repo import Worktree
from git_agent.session import Session

MAX_BUNDLE = 4 << 30  # default cap on a bundle's size (bytes); the caller may pass a smaller one
# What a bundle's pack holds once inflated (deltas make that unbounded: 17 KB can name 1 TiB):
# one object at most the biggest blob a capture commits (a remote's capture makes none bigger),
# all objects of the quarantine together at most MAX_INFLATED; docs/remote.md, "The bundle checks"
MAX_OBJECT = MAX_BLOB
MAX_INFLATED = 4 << 30
_MEMORY_SLACK = 256 << 20  # index-pack's own needs beside a delta's base and result (~16 MiB)
_MAX_HEADER = 1 << 20
_OID = re.compile(rb"^[0-9a-f]{40}$")


class BundleRefused(GitAgentError):
    """A bundle from a remote failed a check: nothing of it was imported (the message says why)."""


class Header:
    """A bundle's header: prerequisites, refs, and where its pack starts."""

    def __init__(self, prerequisites: list[str], refs: list[tuple[str, str]], pack_at: int):
        self.prerequisites = prerequisites
        self.refs = refs
        self.pack_at = pack_at


def parse_header(data: bytes) -> Header:
    """The header of a v2 bundle, or of a v3 one whose only capability is object-format=sha1."""
    end = data.find(b"\n\n")
    if end < 0:
        raise BundleRefused("not a git bundle (no end of header)")
    lines = data[:end].split(b"\n")
    if lines[0] not in (b"# v2 git bundle", b"# v3 git bundle"):
        raise BundleRefused("not a git bundle of version 2 or 3")
    prereq: list[str] = []
    refs: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line.startswith(b"@"):
            if lines[0] != b"# v3 git bundle" or line != b"@object-format=sha1":
                raise BundleRefused(f"unsupported bundle capability {line[:60]!r}")
        elif line.startswith(b"-"):
            oid = line[1:].split(b" ", 1)[0]
            if not _OID.match(oid):
                raise BundleRefused("malformed prerequisite in the bundle header")
            prereq.append(oid.decode())
        else:
            oid, sp, name = line.partition(b" ")
            if not sp or not _OID.match(oid) or not name:
                raise BundleRefused("malformed ref line in the bundle header")
            refs.append((oid.decode(), name.decode(errors="replace")))
    return Header(prereq, refs, end + 2)


def _open_regular(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        raise BundleRefused(f"cannot open the bundle ({e.strerror})") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BundleRefused("the bundle is not a regular file")
    return fd


class _Quarantine:
    """Reads the objects index-pack wrote to the quarantine dir (and nothing else)."""

    def __init__(self, objects: Path):
        self.odb = pygit2.Odb()
        self.backend = pygit2.OdbBackendPack(str(objects))
        self.odb.add_backend(self.backend, 1)

    def read(self, oid: bytes) -> tuple[int, bytes]:
        """A tree's or commit's data; a blob's type only (its content is never needed, and a
        blob of zeros a remote compressed a thousandfold is never inflated into memory)."""
        typ, _size = self.backend.read_header(pygit2.Oid(raw=oid))
        if typ == pygit2.GIT_OBJECT_BLOB:
            return int(typ), b""
        typ, data = self.odb.read(pygit2.Oid(raw=oid))
        return int(typ), bytes(data)

    def oids(self) -> list[bytes]:
        return [o.raw for o in self.backend]


def memory_cap(max_object: int) -> int:
    """The address space git index-pack runs in: a delta's base and its result, each at most
    max_object, and index-pack's own needs."""
    return 2 * max_object + _MEMORY_SLACK


def import_session(worktree: Worktree, session: Session, bundle: Path,
                   *, max_bytes: int = MAX_BUNDLE, max_object: int = MAX_OBJECT,
                   max_total: int = MAX_INFLATED, max_memory: int | None = None) -> str:
    """Import `agent/S` from bundle (made by an untrusted remote) and set the session's branch to
    it; return its tip. Raises BundleRefused, with nothing imported, when any check fails.
    max_object, max_total: caps on what the pack holds once inflated; max_memory: the address
    space index-pack runs in (memory_cap(max_object) when None)."""
    repo = pygit2.Repository(str(worktree.git_dir))
    base = worktree.resolve(session.base_ref)
    if base is None:
        raise BundleRefused(f"session {session.name!r} has no base here to import onto")
    fd = _open_regular(bundle)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise BundleRefused(f"the bundle is {size} bytes, over the cap of {max_bytes}")
        head = header_of(fd)
        _check_header(repo, session, head)
        tip = head.refs[0][0]
        objects = worktree.common_dir / "objects"
        qdir = Path(tempfile.mkdtemp(prefix="incoming-git-agent-", dir=objects))
        try:
            (qdir / "pack").mkdir()
            os.lseek(fd, head.pack_at, os.SEEK_SET)
            _index(worktree, qdir, objects, fd,
                   max_memory=memory_cap(max_object) if max_memory is None else max_memory)
            _check_sizes(worktree, qdir, max_object=max_object, max_total=max_total)
            _check_objects(worktree, repo, qdir, objects, tip=tip, base=base)
            _migrate(qdir, objects)
        finally:
            shutil.rmtree(qdir, ignore_errors=True)
    finally:
        os.close(fd)
    old = worktree.resolve(session.branch) or ""
    proc.git("update-ref", "-m", f"git agent: fetch {session.name} from a remote",
             session.branch, tip, old, cwd=worktree.root)
    return tip


def header_of(fd: int) -> Header:
    data = b""
    while b"\n\n" not in data and len(data) < _MAX_HEADER:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return parse_header(data[:_MAX_HEADER])


def _check_header(repo: pygit2.Repository, session: Session, head: Header) -> None:
    if len(head.refs) != 1:
        raise BundleRefused(f"the bundle holds {len(head.refs)} refs, not just {session.branch}")
    if head.refs[0][1] != session.branch:
        raise BundleRefused(f"the bundle holds {head.refs[0][1]!r}, not {session.branch}")
    for oid in head.prerequisites:
        try:
            obj = repo.get(oid)
        except ValueError:
            obj = None
        if obj is None or obj.type != pygit2.GIT_OBJECT_COMMIT:
            raise BundleRefused(f"the bundle needs commit {oid}, which this repository lacks")


def _printable(text: str) -> str:
    """git's words about the remote's data, without a control character (one line, no escape)."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _env(qdir: Path, objects: Path) -> dict[str, str]:
    return {"GIT_OBJECT_DIRECTORY": str(qdir), "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects)}


def _index(worktree: Worktree, qdir: Path, objects: Path, fd: int, *, max_memory: int) -> None:
    """index-pack --strict: every object well formed (fsck's checks, .gitmodules included), the
    thin pack completed from the repository's own objects. It inflates every object to hash
    it, deltas too (a few bytes of copy instructions may name a TiB): one thread, under a cap
    on its address space (RLIMIT_AS, set by util-linux's prlimit), so a delta bomb makes its
    allocation fail instead of taking the machine's memory."""
    try:
        proc.run(["prlimit", f"--as={max_memory}", "--", "git", "index-pack", "--strict",
                  "--fix-thin", "--threads=1", "--stdin"], cwd=worktree.root,
                 env=proc.no_git_env(_env(qdir, objects)), stdin_fd=fd)
    except proc.CalledProcessError as e:
        err = e.stderr.decode(errors="replace").strip().splitlines()
        last = _printable(err[-1] if err else f"exit status {e.returncode}")
        if "out of memory" in last.lower() or "cannot allocate memory" in last.lower():
            raise BundleRefused(f"the bundle's pack needs more than the {max_memory} bytes of "
                                f"memory git index-pack may use (a delta bomb?): {last}") from e
        raise BundleRefused("the bundle's pack fails git's checks: " + last) from e


def _check_sizes(worktree: Worktree, qdir: Path, *, max_object: int, max_total: int) -> None:
    """Every object of the quarantine (the bundle's, and the bases --fix-thin added) at most
    max_object once inflated, all together at most max_total: their sizes as git reads them
    from the pack (a delta's from its header), before anything reads an object's content."""
    out = proc.git("cat-file", "--batch-all-objects", "--unordered",
                   "--batch-check=%(objectsize) %(objectname)", cwd=worktree.root,
                   env={"GIT_OBJECT_DIRECTORY": str(qdir)})
    total = 0
    for line in out.splitlines():
        size, _, oid = line.partition(b" ")
        n = int(size)
        if n > max_object:
            raise BundleRefused(f"the bundle's object {oid.decode()} is {n} bytes once inflated, "
                                f"over the cap of {max_object}")
        total += n
    if total > max_total:
        raise BundleRefused(f"the bundle's objects are {total} bytes in all once inflated, over "
                            f"the cap of {max_total}")


def _check_objects(worktree: Worktree, repo: pygit2.Repository, qdir: Path, objects: Path,
                   *, tip: str, base: str) -> None:
    quarantine = _Quarantine(qdir)
    imp = Importer(repo, quarantine)
    try:
        new, boundary = imp.commits(bytes.fromhex(tip))
    except KeyError as e:
        raise BundleRefused(f"the bundle lacks object {e.args[0]} its branch needs") from e
    except Unimportable as e:
        raise BundleRefused(f"the bundle's branch: {e}") from e
    data = (quarantine.read(bytes.fromhex(tip)) if new else repo.odb.read(tip))[1]
    if not re.search(rb"^Agent-Base: *" + base.encode() + rb"$", bytes(data), re.M):
        raise BundleRefused(f"the bundle's branch is not a capture of the session's base {base} "
                            "(no Agent-Base trailer naming it)")
    if not (tip == base or any(b.hex() == base or repo.descendant_of(b.hex(), base)
                               for b in boundary)):
        raise BundleRefused(f"the bundle's branch does not descend from the session's base {base}")
    try:
        for c in new:
            imp.queue(pygit2.GIT_OBJECT_COMMIT, c)
    except KeyError as e:
        raise BundleRefused(f"the bundle lacks object {e.args[0]} its branch needs") from e
    except Unimportable as e:
        raise BundleRefused(f"the bundle's branch: {e}") from e
    extra = [o for o in quarantine.oids()
             if o not in imp.queued and pygit2.Oid(raw=o) not in repo.odb]
    if extra:
        raise BundleRefused(f"the bundle holds {len(extra)} objects its branch does not reach")
    # connectivity as git sees it (receive-pack's check), over quarantine + repository
    try:
        proc.git("rev-list", "--objects", "--quiet", tip, "--not", base, cwd=worktree.root,
                 env=_env(qdir, objects))
    except proc.CalledProcessError as e:
        err = e.stderr.decode(errors="replace").strip().splitlines()
        raise BundleRefused("the bundle's branch is not complete: "
                            + _printable(err[-1][-200:] if err else "")) from e


def _migrate(qdir: Path, objects: Path) -> None:
    """Move the checked pack in: the pack first, its index last (git finds a pack by its index)."""
    names = sorted(os.listdir(qdir / "pack"), key=lambda n: (n.endswith(".idx"), n))
    dest = objects / "pack"
    dest.mkdir(exist_ok=True)
    for n in names:
        if n.startswith("pack-") and not n.endswith(".keep"):
            os.replace(qdir / "pack" / n, dest / n)


def _is_commit(repo: pygit2.Repository, oid: str) -> bool:
    """Is oid the 40-hex id of a commit this repository has (not any revision expression)?"""
    if not re.fullmatch(r"[0-9a-f]{40}", oid):
        return False
    try:
        obj = repo.get(oid)
    except ValueError:
        return False
    return obj is not None and obj.type == pygit2.GIT_OBJECT_COMMIT


def make_base_bundle(worktree: Worktree, session: Session, out: Path,
                     have: list[str]) -> bool:
    """Write to out a thin bundle of the session's base minus what the remote has (commits it
    named); False, and nothing written, when the remote has the base already. have is the
    remote's word: only 40-hex ids of commits this repository has count, anything else (a
    ref of yours, a reflog entry, a tree: a probe of what you have) is ignored."""
    base = worktree.resolve(session.base_ref)
    if base is None:
        raise GitAgentError(f"session {session.name!r} has no base")
    if base in have:
        return False
    repo = pygit2.Repository(str(worktree.git_dir))
    # a base is HEAD plus the user's work, a sibling of the previous base, not its child: its
    # tree named as well, so files unchanged since (untracked ones too) are not sent again
    known = [h for h in dict.fromkeys(have) if _is_commit(repo, h)]
    if any(repo.descendant_of(h, base) for h in known):
        return False  # it has the base already (git would refuse to make an empty bundle)
    nots = [x for h in known for x in (h, h + "^{tree}")]
    # written here, not by `git bundle create`: its pack deltas only against the trees of the
    # base's own parents; --shallow makes every commit the remote has a delta base, so a file
    # edited since the last base goes as a delta, not whole (a 100 KB file: 58 KB -> 0.3 KB)
    head = "# v2 git bundle\n" + "".join(f"-{h}\n" for h in known) + \
        f"{base} {session.base_ref}\n\n"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, head.encode())
        p = subprocess.run(["git", "pack-objects", "--stdout", "--thin", "--shallow",
                            "--delta-base-offset", "--revs", "-q"],
                           input="\n".join([base, "--not", *nots, ""]).encode(), stdout=fd,
                           stderr=subprocess.PIPE, cwd=worktree.root, env=proc.no_git_env())
    finally:
        os.close(fd)
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise GitAgentError(f"cannot pack the base: {err[-1] if err else 'git pack-objects'}")
    return True
