"""The assessment of a session's changes kept in its folder: a cache, never a source of truth.

What review and apply show for each change that depends only on the two commits and the
user's git config (the change list as `git diff-tree --raw` gives it, and each change's risks
from its path, modes and blobs: risks.assess) is computed once, when the branch is made (a
capture, a fetched session's import), and stored in the session's folder keyed by the base
and head commits, a fingerprint of every config value the rules read and the rule table's
version. Review and apply use it only when the key matches and the body's checksum holds;
anything else (another key, a damaged or missing file, one that does not parse) means
computing it again. What depends on your worktree or HEAD (a directory shaped like a git dir
with your files, a deleted file that is in no commit) is never stored: it is judged each time.

The session's folder is outside the sandbox (the agent cannot write it), and the file is
written by rename, so a reader sees a whole one or none."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from git_agent.mergeback import risks
from git_agent.mergeback.user_config import GitConfig

NAME = "assessment"
_MAGIC = b"git-agent-assessment 2"  # 2: with the line counts (diffstat.py)


def key(base: str, head: str, config: GitConfig) -> str:
    """What the stored assessment must have been computed from to be used."""
    h = hashlib.sha256()
    for part in (risks.version(), base, head, repr(config.hooks), repr(config.configs),
                 config.named.fingerprint()):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Assessment:
    raw: bytes  # `git diff-tree -r -z --no-renames --raw base head`, as git printed it
    found: list[tuple[str, ...]]  # each change's risks from risks.assess, in raw's order
    heads: list[bytes]  # foreign.head_dirs of the paths the branch brings
    changes: list[Any] = field(default_factory=list)  # raw parsed (view.FileChange)
    # per change, in raw's order: (added, deleted, binary) as `git diff-tree --numstat` with
    # the default algorithm counts lines; a binary file's are its new and old blob sizes
    counts: list[tuple[int, int, bool]] | None = None


_loaded: dict[tuple[Path, str], Assessment] = {}  # one read per command (review asks twice)


def load(folder: Path, want: str) -> Assessment | None:
    """The assessment stored under this key, or None: no file, another key, a damaged one."""
    if (folder, want) in _loaded:  # the same key is the same assessment, whatever is stored
        return _loaded[folder, want]
    try:
        data = (folder / NAME).read_bytes()
    except OSError:
        return None
    head, sep, rest = data.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 6 or b" ".join(parts[:2]) != _MAGIC:
        return None
    stored_key, digest, raw_len = parts[2], parts[3], parts[4]
    if stored_key != want.encode() or not raw_len.isdigit():
        return None
    if hashlib.sha256(rest).hexdigest().encode() != digest:
        return None
    n = int(raw_len)
    try:
        table = json.loads(rest[n:])
        count = int(parts[5])
        found: list[tuple[str, ...]] = [()] * count
        for i, reasons in table["risks"].items():
            found[int(i)] = tuple(str(r) for r in reasons)
        heads = [os.fsencode(str(d)) for d in table["heads"]]
        counts = None if table["counts"] is None else [
            (int(a), int(d), bool(b)) for a, d, b in table["counts"]]
        if counts is not None and len(counts) != count:
            counts = None
    except (ValueError, TypeError, IndexError, KeyError, AttributeError):
        return None
    got = _loaded[folder, want] = Assessment(rest[:n], found, heads, counts=counts)
    return got


def store(folder: Path, want: str, raw: bytes, found: Sequence[Sequence[str]],
          heads: Sequence[bytes], counts: Sequence[tuple[int, int, bool]] | None) -> None:
    """Keep the assessment (a failure to write only costs the next review its time)."""
    table = json.dumps({"risks": {str(i): list(r) for i, r in enumerate(found) if r},
                        "heads": [os.fsdecode(d) for d in heads],
                        "counts": None if counts is None else [list(c) for c in counts]},
                       ensure_ascii=True).encode()
    body = raw + table
    head = b" ".join([_MAGIC, want.encode(), hashlib.sha256(body).hexdigest().encode(),
                      str(len(raw)).encode(), str(len(found)).encode()])
    tmp = folder / f".{NAME}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(head + b"\n" + body)
        os.replace(tmp, folder / NAME)
    except BaseException as e:  # ^C too: no half-written file left beside it
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not isinstance(e, OSError):
            raise
