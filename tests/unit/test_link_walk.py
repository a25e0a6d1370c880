"""link_walk.resolve follows links as the kernel does (security.md, "What comes back", rule 3:
a chain of links out of the repository is named, and so is a link to a directory above it,
through which a later link would lead out): checked against the kernel itself, with the same
links made in a real directory."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from git_agent.mergeback import link_walk

LINKS = {  # path -> target
    b"a": b".", b"u": b"a/..", b"k": b"u/x/secret", b"l1": b"l2", b"l2": b"l1",
    b"d/up": b"../a/d", b"d/in": b"../a/src/f", b"abs": b"/etc", b"via": b"abs/passwd",
    b"deep/x": b"../deep/../a/a/a/src", b"self": b"self", b"far": b"d/up/up/up/in",
    b"dd": b"a/d/../..", b"g": b"a/.git/config", b"side": b"../d", b"down": b"deep",
}


def _look(path: list[bytes] | tuple[bytes, ...]) -> bytes | None:
    return LINKS.get(b"/".join(path))


@pytest.mark.parametrize("path", sorted(LINKS))
def test_risky_files_are_named_before_they_are_written_links_resolved_as_the_kernel_does(
        tmp_path: Path, path: bytes) -> None:
    root = tmp_path / "wt"
    for d in (b"d", b"deep", b"src", b".git"):
        os.makedirs(os.path.join(os.fsencode(root), d), exist_ok=True)
    for p, t in LINKS.items():
        os.symlink(t, os.path.join(os.fsencode(root), p))
    full = os.path.join(os.fsencode(root), path)
    try:
        os.stat(full)
        loop = False
    except OSError as e:
        loop = e.errno == errno.ELOOP
    real = os.path.realpath(full)
    top = os.fsencode(os.path.realpath(root))
    inside = real == top or real.startswith(top + b"/")
    rel = os.path.relpath(real, top)
    depth = 0 if rel == b"." else rel.count(b"/") + 1
    climbs = os.path.isdir(full) and depth < path.count(b"/") + 1  # to a dir above the link
    kernel = loop or not inside or real.startswith(top + b"/.git") or climbs
    assert (link_walk.leads_out(_look, path, LINKS[path]) is not None) == kernel, path
