"""git tree entries: their modes, their encoding, and the names git refuses in them: `.git`
as any filesystem may spell it, and a symlinked `.gitmodules`.

The names follow git's verify_path with core.protectHFS and core.protectNTFS (path.c, utf8.c): git
refuses to check out a branch holding such a name, and a server that runs fsck refuses a push
of it. On a case-insensitive or NTFS filesystem, `.GIT/hooks/x` or `git~1/config` would be the
repository's own files.
"""

from __future__ import annotations

from collections.abc import Iterable

TREE, BLOB, EXEC, LINK, GITLINK = 0o40000, 0o100644, 0o100755, 0o120000, 0o160000
MODES = (TREE, BLOB, EXEC, LINK, GITLINK)
MAX_BLOB = 1 << 30  # bigger files stay in the session (with a warning), never read whole

Entry = tuple[int, bytes]  # (mode, raw 20-byte oid)


def parse_tree(data: bytes) -> dict[bytes, Entry]:
    """A tree object's entries by name."""
    out: dict[bytes, Entry] = {}
    i = 0
    while i < len(data):
        sp = data.index(b" ", i)
        nul = data.index(b"\0", sp)
        out[data[sp + 1 : nul]] = (int(data[i:sp], 8), data[nul + 1 : nul + 21])
        i = nul + 21
    return out


# Code points HFS+ ignores in names (utf8.c next_hfs_char): `.g\u200cit` is `.git` there.
_HFS_IGNORED = frozenset(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def _spaces_and_periods(rest: bytes) -> bool:
    """NTFS ignores trailing dots and spaces; ':' starts an alternate data stream."""
    return not rest.split(b":", 1)[0].strip(b". ")


def _hfs(name: bytes, target: str) -> bool:
    """utf8.c is_hfs_dot_generic: name is target once the code points HFS+ ignores are left
    out, ASCII case ignored. Like git, a malformed character (or U+FFFE, U+FFFF) ends the
    name there: `.git\xff` is `.git`."""
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError as e:
        text = name[: e.start].decode("utf-8")
    for end in ("\ufffe", "\uffff"):
        text = text.split(end, 1)[0]
    text = "".join(c for c in text if ord(c) not in _HFS_IGNORED)
    return text.isascii() and text.lower() == target


def _after_backslashes(name: bytes) -> list[bytes]:
    """name, and what follows each backslash in it: NTFS takes a backslash for a path
    separator, and git checks the NTFS spellings after each (git fsck after every one,
    verify_path after all but a leading one: gittree is the stricter of the two)."""
    return [name] + [name[i + 1 :] for i, c in enumerate(name) if c == 0x5C]


def _ntfs_dotgit(name: bytes) -> bool:
    """path.c is_ntfs_dotgit: .git or its short name git~1, then only dots and spaces."""
    low = name.lower()
    for stem in (b".git", b"git~1"):
        if low.startswith(stem):
            return _spaces_and_periods(name[len(stem) :].split(b"\\", 1)[0])
    return False


def _ntfs_dot_generic(name: bytes, dotted: bytes, shortname: bytes) -> bool:
    """path.c is_ntfs_dot_generic: .NAME, its short name NAME6~1..4, or the hashed fall-back
    short name (shortname, then ~ and digits), each followed by only dots and spaces."""
    low = name.lower()
    if low.startswith(b"." + dotted):
        return _spaces_and_periods(name[len(dotted) + 1 :])
    if low[:6] == dotted[:6] and low[6:7] == b"~" and low[7:8] in (b"1", b"2", b"3", b"4"):
        return _spaces_and_periods(name[8:])
    i, saw_tilde = 0, False
    while i < 8:
        if i >= len(low):
            return False
        c = low[i : i + 1]
        if saw_tilde:
            if not c.isdigit():
                return False
        elif c == b"~":
            i += 1
            if not low[i : i + 1] or low[i : i + 1] not in b"123456789":
                return False
            saw_tilde = True
        elif i >= 6 or low[i] >= 0x80 or c != shortname[i : i + 1]:
            return False
        i += 1
    return _spaces_and_periods(name[8:])


def is_dotgit(name: bytes) -> bool:
    """Would git refuse the path component name as a spelling of `.git`?"""
    if name.isascii() and b"git" not in name.lower():
        return False  # every spelling holds it (.git, git~1; HFS's ignored points are not ASCII)
    return any(_ntfs_dotgit(n) for n in _after_backslashes(name)) or _hfs(name, ".git")


def is_dotgitmodules(name: bytes) -> bool:
    """Is name a spelling of `.gitmodules` (which git refuses as a symlink)?"""
    if name.isascii() and b"~" not in name and b"gitmodules" not in name.lower():
        return False  # every spelling holds one of them (short names: a ~)
    return any(_ntfs_dot_generic(n, b"gitmodules", b"gi7eba") for n in _after_backslashes(name)) \
        or _hfs(name, ".gitmodules")


def bad_entry(name: bytes, mode: int) -> bool:
    """An entry no tree git accepts may hold: not one plain name, a spelling of .git, a
    symlinked .gitmodules, or an unknown mode."""
    return name in (b"", b".", b"..") or b"/" in name or b"\0" in name or \
        is_dotgit(name) or (mode == LINK and is_dotgitmodules(name)) or mode not in MODES


# What setup.c's is_git_directory() looks for: a directory holding HEAD with objects/ and refs/
# (or a commondir file pointing at them) is a repository to git's discovery, bare or not, and its
# config (core.fsmonitor, core.hooksPath...) runs. Matched without regard to ASCII case, for
# case-insensitive filesystems; any one of the others beside HEAD is enough (stricter than git).
GITDIR_NAMES = frozenset({b"head", b"objects", b"refs", b"commondir"})


def makes_gitdir(names: Iterable[bytes]) -> bool:
    """Would git take a directory holding these entry names for a repository (a gitdir)?
    True when HEAD stands beside objects, refs or commondir, in any ASCII case."""
    low = {n.lower() for n in names}
    return b"head" in low and bool(low & (GITDIR_NAMES - {b"head"}))


def repository_name(name: bytes) -> bool:
    """Is name one of the entries that make a directory a gitdir (HEAD, objects, refs,
    commondir, any ASCII case)?"""
    return name.lower() in GITDIR_NAMES
