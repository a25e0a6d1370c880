"""After `apply -p`: a file some of whose hunks stay in the session gets, in the overlay upper,
the base with just those hunks (one rename, beneath the upper, no link followed), so the
branch captured next and the next apply see only them."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

from git_agent import beneath
from git_agent.gittree import EXEC


def keep_in_upper(upper: os.PathLike[str] | str, path: bytes, data: bytes, mode: int) -> None:
    """Make the upper's file at path hold data (its permission bits kept; a new one gets
    0755 or 0644 from the git mode)."""
    root = beneath.open_root(upper)
    try:
        with beneath.parent(root, path) as (fd, name):
            try:
                st = beneath.lstat(fd, name)
                bits = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None
            except FileNotFoundError:
                bits = None
            if bits is None:
                bits = 0o755 if mode == EXEC else 0o644
            tmp = b".git-agent-" + secrets.token_hex(6).encode() + b".tmp"
            ffd = beneath.create(fd, tmp, 0o600)
            try:
                with os.fdopen(ffd, "wb", closefd=False) as f:
                    f.write(data)
                    f.flush()
                    os.fsync(ffd)
                os.fchmod(ffd, bits)
                os.close(ffd)
                ffd = -1
                os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                if ffd >= 0:
                    os.close(ffd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
                raise
    finally:
        os.close(root)
