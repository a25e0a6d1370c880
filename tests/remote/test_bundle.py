"""The "Back" path of docs/remote.md: a session bundle from an untrusted remote is imported only
when every check passes, and a refused one leaves no object behind (git cat-file is the oracle)."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from git_agent import session as sessions
from git_agent.remote import bundle
from git_agent.repo import find_worktree
from tests.conftest import run_git


class Remote:
    """The local repository with a session `s` (its base at HEAD) and a remote clone of it
    where hostile bundles are made."""

    def __init__(self, local: Path, tmp: Path):
        self.local = local
        run_git("update-ref", "refs/agent-base/s", "HEAD", cwd=local)
        self.base = run_git("rev-parse", "HEAD", cwd=local).strip()
        self.dir = tmp / "remote"
        run_git("clone", "-q", str(local), str(self.dir), cwd=tmp)
        self.wt = find_worktree(local)
        self.session = sessions.get(self.wt, "s")

    def git(self, *args: str, input: bytes | None = None) -> str:
        return run_git(*args, cwd=self.dir, input=input)

    def commit_tree(self, tree: str, parent: str | None = None, msg: str = "agent",
                    trailer: bool = True) -> str:
        """A commit as the remote's capture makes it (its Agent-Base trailer names the base)."""
        msg += f"\n\nAgent-Base: {self.base}" if trailer else ""
        return self.git("commit-tree", tree, "-p", parent or self.base, "-m", msg).strip()

    def raw_tree(self, entries: list[tuple[str, bytes, str]], order: bool = True) -> str:
        """A tree object written as is (git mktree would refuse some names)."""
        data = b"".join(f"{mode} ".encode() + name + b"\0" + bytes.fromhex(oid)
                        for mode, name, oid in (sorted(entries, key=lambda e: e[1])
                                                if order else entries))
        return self.git("hash-object", "-w", "-t", "tree", "--literally", "--stdin",
                        input=data).strip()

    def blob(self, text: bytes) -> str:
        return self.git("hash-object", "-w", "--stdin", input=text).strip()

    def base_entries(self) -> list[tuple[str, bytes, str]]:
        out = []
        for line in self.git("ls-tree", self.base).splitlines():
            meta, name = line.split("\t", 1)
            mode, _, oid = meta.split()
            out.append((mode, name.encode(), oid))
        return out

    def make(self, tip: str, *refspecs: str, name: str = "b.bundle") -> Path:
        """A bundle of tip as refs/heads/agent/s (or the refs given), minus the base."""
        self.git("update-ref", "refs/heads/agent/s", tip)
        path = self.dir.parent / name
        self.git("bundle", "create", "-q", str(path), *(refspecs or ("agent/s",)),
                 "--not", self.base)
        return path

    def has(self, oid: str) -> bool:
        p = subprocess.run(["git", "cat-file", "-e", oid], cwd=self.local, capture_output=True)
        return p.returncode == 0

    def import_(self, path: Path, **kw: int) -> str:
        return bundle.import_session(self.wt, self.session, path, **kw)


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> Remote:
    return Remote(repo, tmp_path)


def good_tip(r: Remote) -> tuple[str, str]:
    blob = r.blob(b"from the remote\n")
    tree = r.raw_tree(r.base_entries() + [("100644", b"new.txt", blob)])
    return r.commit_tree(tree), blob


def test_a_good_bundle_is_imported(remote: Remote) -> None:
    tip, blob = good_tip(remote)
    assert not remote.has(blob)
    assert remote.import_(remote.make(tip)) == tip
    assert run_git("rev-parse", "agent/s", cwd=remote.local).strip() == tip
    assert remote.has(blob)
    run_git("fsck", "--strict", cwd=remote.local)
    assert not [p for p in (remote.local / ".git/objects").iterdir()
                if p.name.startswith("incoming")]


def refused(remote: Remote, path: Path, *needle: str, absent: list[str], **kw: int) -> str:
    with pytest.raises(bundle.BundleRefused) as e:
        remote.import_(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in needle), msg
    for oid in absent:
        assert not remote.has(oid), f"{oid} arrived although the bundle was refused"
    assert run_git("for-each-ref", "refs/heads/agent/", cwd=remote.local) == ""
    assert not [p for p in (remote.local / ".git/objects").iterdir()
                if p.name.startswith("incoming")]
    return msg


def test_a_bundle_with_an_extra_ref_is_refused(remote: Remote) -> None:
    tip, blob = good_tip(remote)
    remote.git("update-ref", "refs/heads/other", tip)
    refused(remote, remote.make(tip, "agent/s", "other"), "2 refs", absent=[tip, blob])


def test_a_bundle_of_another_ref_is_refused(remote: Remote) -> None:
    tip, blob = good_tip(remote)
    remote.git("update-ref", "refs/heads/agent/t", tip)
    refused(remote, remote.make(tip, "agent/t"), "refs/heads/agent/t", absent=[tip, blob])


def test_a_bundle_needing_a_commit_we_lack_is_refused(remote: Remote) -> None:
    mid = remote.commit_tree(remote.git("rev-parse", f"{remote.base}^{{tree}}").strip(),
                             msg="only on the remote")
    blob = remote.blob(b"x\n")
    tip = remote.commit_tree(remote.raw_tree(remote.base_entries() + [("100644", b"x", blob)]),
                             parent=mid)
    remote.git("update-ref", "refs/heads/agent/s", tip)
    path = remote.dir.parent / "b.bundle"
    remote.git("bundle", "create", "-q", str(path), "agent/s", "--not", mid)
    refused(remote, path, mid, "lacks", absent=[tip, blob])


def test_a_tip_that_is_no_capture_of_the_base_is_refused(remote: Remote) -> None:
    blob = remote.blob(b"x\n")
    tip = remote.commit_tree(remote.raw_tree(remote.base_entries() + [("100644", b"x", blob)]),
                             trailer=False)
    refused(remote, remote.make(tip), "Agent-Base", absent=[tip, blob])


def test_a_tip_not_above_the_base_is_refused(remote: Remote) -> None:
    blob = remote.blob(b"unrelated\n")
    tree = remote.raw_tree([("100644", b"f", blob)])
    tip = remote.git("commit-tree", tree, "-m", f"root\n\nAgent-Base: {remote.base}").strip()
    refused(remote, remote.make(tip), "does not descend", absent=[tip, blob])


@pytest.mark.parametrize("name", [b".git", b".GIT", b"git~1", b".git."])
def test_a_tree_with_a_dotgit_is_refused(remote: Remote, name: bytes) -> None:
    hook = remote.blob(b"#!/bin/sh\necho owned\n")
    inner = remote.raw_tree([("100755", b"post-checkout", hook)])
    sub = remote.raw_tree([("40000", name, inner)])
    tip = remote.commit_tree(remote.raw_tree(remote.base_entries() + [("40000", b"sub", sub)]))
    refused(remote, remote.make(tip), absent=[tip, hook, sub])


def test_a_tree_of_a_repository_shape_is_refused(remote: Remote) -> None:
    head = remote.blob(b"ref: refs/heads/main\n")
    cfg = remote.blob(b"[core]\n\tfsmonitor = echo owned\n")
    empty = remote.raw_tree([("100644", b"keep", remote.blob(b""))])
    gitdir = remote.raw_tree([("100644", b"HEAD", head), ("100644", b"config", cfg),
                              ("40000", b"objects", empty), ("40000", b"refs", empty)])
    tip = remote.commit_tree(remote.raw_tree(remote.base_entries() + [("40000", b"g", gitdir)]))
    refused(remote, remote.make(tip), "shape of a repository", absent=[tip, cfg, gitdir])


def test_a_known_tree_of_a_repository_shape_at_a_new_path_is_refused(remote: Remote) -> None:
    """A repository-shaped tree your store already has (a fixture, a fetched pull request's
    tree) placed by the remote's branch at a new path: known or not, it is checked."""
    def both(*args: str, input: bytes) -> str:  # the same object in your store and the remote's
        mine = run_git(*args, cwd=remote.local, input=input).strip()
        assert remote.git(*args, input=input).strip() == mine
        return mine
    head = both("hash-object", "-w", "--stdin", input=b"ref: refs/heads/main\n")
    empty = both("hash-object", "-w", "--stdin", input=b"")
    keep = both("mktree", input=f"100644 blob {empty}\tkeep\n".encode())
    fx = both("mktree", input=(f"100644 blob {head}\tHEAD\n040000 tree {keep}\tobjects\n"
                               f"040000 tree {keep}\trefs\n").encode())
    above = both("mktree", input=f"040000 tree {fx}\tfx\n".encode())
    for tree in (fx, above):
        tip = remote.commit_tree(remote.raw_tree(remote.base_entries()
                                                 + [("40000", b"evil", tree)]))
        refused(remote, remote.make(tip), "repository's shape", absent=[tip])


def test_a_new_gitmodules_is_refused(remote: Remote) -> None:
    mods = remote.blob(b'[submodule "x"]\n\tpath = x\n\turl = https://example.invalid/x\n')
    tip = remote.commit_tree(remote.raw_tree(remote.base_entries()
                                             + [("100644", b".gitmodules", mods)]))
    refused(remote, remote.make(tip), ".gitmodules", absent=[tip, mods])


def test_a_new_gitmodules_is_refused_even_when_the_tip_holds_its_bytes(remote: Remote) -> None:
    """An intermediate commit's .gitmodules (and gitlink) whose blob the tip also holds under a
    harmless name: only the repository's own store makes a .gitmodules known, never the bundle
    (the tip's trees are queued first, so "queued" would let it through)."""
    mods = remote.blob(b'[submodule "lib"]\n\tpath = lib\n\turl = https://attacker.invalid/l\n')
    vendor = remote.commit_tree(remote.raw_tree(remote.base_entries()
                                                + [("100644", b".gitmodules", mods),
                                                   ("160000", b"lib", remote.base)]))
    docs = remote.raw_tree([("100644", b"sample.txt", mods)])
    tip = remote.commit_tree(remote.raw_tree(remote.base_entries() + [("40000", b"docs", docs)]),
                             parent=vendor)
    refused(remote, remote.make(tip), ".gitmodules", absent=[tip, vendor, mods, docs])


def test_a_gitmodules_already_in_the_store_is_accepted(remote: Remote) -> None:
    """The rule's other half: a .gitmodules whose blob the repository has (yours) is no news."""
    text = b'[submodule "x"]\n\tpath = x\n\turl = https://example.invalid/x\n'
    mods = run_git("hash-object", "-w", "--stdin", cwd=remote.local, input=text).strip()
    assert remote.blob(text) == mods
    tip = remote.commit_tree(remote.raw_tree(remote.base_entries()
                                             + [("100644", b".gitmodules", mods)]))
    assert remote.import_(remote.make(tip)) == tip


def test_an_oversize_bundle_is_refused(remote: Remote) -> None:
    tip, blob = good_tip(remote)
    path = remote.make(tip)
    refused(remote, path, "over the cap", absent=[tip, blob], max_bytes=path.stat().st_size - 1)


def test_a_corrupt_pack_is_refused(remote: Remote) -> None:
    tip, blob = good_tip(remote)
    path = remote.make(tip)
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF  # inside the last object / the trailer checksum
    path.write_bytes(bytes(data))
    refused(remote, path, "fails git's checks", absent=[tip, blob])


def test_a_bundle_with_unreachable_objects_is_refused(remote: Remote) -> None:
    tip, blob = good_tip(remote)
    stray = remote.blob(b"not reachable from agent/s\n")
    stray_tree = remote.raw_tree([("100644", b"stray", stray)])
    remote.git("tag", "stray", stray_tree)
    path = remote.dir.parent / "b.bundle"
    remote.git("update-ref", "refs/heads/agent/s", tip)
    # a pack of more objects than the one ref reaches, under a header naming only agent/s
    pack = remote.git("bundle", "create", "-q", str(path), "agent/s", "stray", "--not",
                      remote.base)
    del pack
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    lines = [ln for ln in head.split(b"\n") if not ln.endswith(b" refs/tags/stray")]
    path.write_bytes(b"\n".join(lines) + b"\n\n" + body)
    refused(remote, path, "objects its branch does not reach",
            absent=[tip, blob, stray, stray_tree])


def test_a_malformed_object_is_refused(remote: Remote) -> None:
    """index-pack --strict runs fsck's checks on every object: here a tree out of order."""
    blob = remote.blob(b"z\n")
    tree = remote.raw_tree(list(reversed(sorted(remote.base_entries() + [("100644", b"zz", blob)],
                                                key=lambda e: e[1]))), order=False)
    tip = remote.commit_tree(tree)
    refused(remote, remote.make(tip), "fails git's checks", absent=[tip, blob, tree])


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        c, n = n & 0x7F, n >> 7
        out.append(c | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pack_header(typ: int, size: int) -> bytes:
    c, size, out = (typ << 4) | (size & 0x0F), size >> 4, bytearray()
    while size:
        out.append(c | 0x80)
        c, size = size & 0x7F, size >> 7
    out.append(c)
    return bytes(out)


def delta_bomb(r: Remote, src: int, out: int, count: int = 1) -> tuple[Path, str, list[str]]:
    """A bundle of agent/s (made by hand, as a hostile remote would) whose tip adds count blobs
    of out zero bytes, each stored as an OFS_DELTA of copy instructions on one blob of src zero
    bytes: a few KB that git must inflate to count * out bytes. (bundle, tip, blob oids)"""
    base_data = b"\0" * src
    chunk = min(src, 0xFFFFFF)
    objs = [_pack_header(3, src) + zlib.compress(base_data, 9)]
    blobs = []
    for i in range(count):
        size = out + i  # distinct blobs
        ins, left = bytearray(), size
        while left:
            n = min(chunk, left)
            ins += bytes([0xF0]) + struct.pack("<I", n)[:3]
            left -= n
        delta = _varint(src) + _varint(size) + bytes(ins)
        back = sum(len(o) for o in objs)
        enc = bytearray([back & 0x7F])
        back >>= 7
        while back:
            back -= 1
            enc.insert(0, 0x80 | (back & 0x7F))
            back >>= 7
        objs.append(_pack_header(6, len(delta)) + bytes(enc) + zlib.compress(delta, 9))
        h, zeros_mib = hashlib.sha1(b"blob %d\0" % size), b"\0" * (1 << 20)
        for at in range(0, size, 1 << 20):
            h.update(zeros_mib[:min(1 << 20, size - at)])
        blobs.append(h.hexdigest())
    zeros = hashlib.sha1(b"blob %d\0" % src + base_data).hexdigest()
    tree = r.raw_tree(r.base_entries() + [("100644", f"big{i}.bin".encode(), b)
                                          for i, b in enumerate(blobs)]
                      + [("100644", b"zeros.bin", zeros)])
    tree_data = subprocess.run(["git", "cat-file", "tree", tree], cwd=r.dir, check=True,
                               capture_output=True).stdout
    tip = r.commit_tree(tree)
    commit = subprocess.run(["git", "cat-file", "commit", tip], cwd=r.dir, check=True,
                            capture_output=True).stdout
    objs.append(_pack_header(2, len(tree_data)) + zlib.compress(tree_data))
    objs.append(_pack_header(1, len(commit)) + zlib.compress(commit))
    pack = b"PACK" + struct.pack(">II", 2, len(objs)) + b"".join(objs)
    pack += hashlib.sha1(pack).digest()
    path = r.dir.parent / "bomb.bundle"
    path.write_bytes(b"# v2 git bundle\n-%s\n%s refs/heads/agent/s\n\n"
                     % (r.base.encode(), tip.encode()) + pack)
    return path, tip, blobs


def test_a_delta_bomb_over_the_object_cap_is_refused(remote: Remote) -> None:
    """One blob inflating past the cap on an object's size: refused before anything reads it."""
    path, tip, blobs = delta_bomb(remote, 1 << 16, 8 << 20)
    assert path.stat().st_size < 8192
    msg = refused(remote, path, "over the cap", absent=[tip, *blobs], max_object=4 << 20)
    assert str(8 << 20) in msg


def test_a_delta_bomb_over_the_total_cap_is_refused(remote: Remote) -> None:
    """Many blobs each under the object cap whose sum inflates past the quarantine's cap."""
    path, tip, blobs = delta_bomb(remote, 1 << 16, 2 << 20, count=8)
    refused(remote, path, "over the cap", "in all", absent=[tip, *blobs],
            max_object=4 << 20, max_total=8 << 20)


def test_a_delta_bomb_cannot_take_the_machines_memory(remote: Remote) -> None:
    """index-pack inflates every delta to hash it: it runs under a cap on its address space, so
    a blob bigger than that cap makes it fail (the allocation refused, never made) instead of
    taking the machine's memory. A 1 GiB blob (within the object cap) under a 256 MiB cap."""
    path, tip, blobs = delta_bomb(remote, 1 << 20, 1 << 30)
    refused(remote, path, "memory", absent=[tip, *blobs], max_object=1 << 30,
            max_memory=256 << 20)


def test_not_a_bundle_is_refused(remote: Remote, tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"hello\n")
    refused(remote, path, "not a git bundle", absent=[])


def test_the_remotes_have_list_is_taken_only_as_commit_ids(remote: Remote,
                                                           tmp_path: Path) -> None:
    """The remote's `have` list names commits by 40-hex id: a revision expression (a ref of
    yours, a reflog entry, a tree) is ignored, so the base bundle cannot tell the remote which
    of your refs exist or what they share with the base, and nothing of it crashes the run."""
    local = remote.local
    (local / "private.txt").write_bytes(b"password=hunter2\n" * 4000)
    run_git("checkout", "-q", "-b", "private-work", cwd=local)
    run_git("add", "private.txt", cwd=local)
    run_git("commit", "-qm", "private", cwd=local)
    run_git("checkout", "-q", "-", cwd=local)
    (local / "private.txt").write_bytes(b"password=hunter2\n" * 4000)  # the base holds it too
    run_git("add", "private.txt", cwd=local)
    run_git("commit", "-qm", "wip", cwd=local)
    run_git("update-ref", "refs/agent-base/s", "HEAD", cwd=local)

    def size(have: list[str]) -> int:
        out = tmp_path / "base.bundle"
        out.unlink(missing_ok=True)
        assert bundle.make_base_bundle(remote.wt, remote.session, out, have)
        return out.stat().st_size

    plain = size([])
    tree = run_git("rev-parse", "private-work^{tree}", cwd=local).strip()
    blob = run_git("rev-parse", "private-work:private.txt", cwd=local).strip()
    for probe in (["private-work"], ["no-such-branch"], ["refs/agent-base/s"], ["HEAD"],
                  ["private-work@{0}"], [tree], [blob], ["0" * 40], ["--all"],
                  [remote.base[:12]], [remote.base + "\n"]):
        assert size(probe) == plain, probe
    # a commit id we have is used as such: what it holds is not sent again
    assert size([remote.base]) < plain
    # one that holds the base already: nothing to send, no empty bundle asked of git
    child = run_git("commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "x", cwd=local).strip()
    assert not bundle.make_base_bundle(remote.wt, remote.session, tmp_path / "n.bundle", [child])
    assert not (tmp_path / "n.bundle").exists()
