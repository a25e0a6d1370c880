"""A text file's change as hunks: git's own diff parsed, split as `git add -p` splits, edited
as it edits, and any choice of them laid onto the base bytes (exactly: no diff is redone).

A hunk is shown as git printed it (its coloured lines kept beside the plain ones); what it
changes is held as blocks: a run of removed and added lines at a line of the base. Laying a
choice of blocks onto the base gives the file with just those changes, which is what apply
takes into the worktree (three-way, onto your file) and what the session keeps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from git_agent import ui

_HEADER = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")


class EditRejected(Exception):
    """An edited hunk that does not apply to the base (its old side was changed)."""


@dataclass(frozen=True)
class Line:
    tag: bytes  # b" ", b"-" or b"+"
    text: bytes  # without the tag, with its b"\n" unless the file ends without one
    shown: bytes  # the line as git printed it in colour (or plain), made visible, no b"\n"
    old: int  # the base line it stands at (0-based: for + lines, the next base line)
    new: int


@dataclass(frozen=True)
class Block:
    """Replace base lines [at, at + len(old)) by new."""

    at: int
    old: tuple[bytes, ...]
    new: tuple[bytes, ...]


@dataclass
class Hunk:
    lines: list[Line]
    tail: bytes = b""  # the function name git printed after @@ (plain)
    shown_header: bytes | None = None  # git's coloured header line, while not split
    edited: Block | None = None  # set by an edit: this block instead of the lines' blocks

    def blocks(self) -> list[Block]:
        if self.edited is not None:
            return [self.edited]
        return _blocks(self.lines)

    def header(self) -> bytes:
        olds = [ln for ln in self.lines if ln.tag != b"+"]
        news = [ln for ln in self.lines if ln.tag != b"-"]
        o0 = self.lines[0].old + 1 if olds else self.lines[0].old
        n0 = self.lines[0].new + 1 if news else self.lines[0].new
        return b"@@ -%d,%d +%d,%d @@%s" % (o0, len(olds), n0, len(news), self.tail)

    def splittable(self) -> bool:
        return self.edited is None and len(_runs(self.lines)) > 1

    def split(self) -> list[Hunk]:
        """As git: one hunk per run of changes, each with all the context around it (the
        context between two runs is shown in both)."""
        out = []
        for start, end in _runs(self.lines):
            lo = start
            while lo > 0 and self.lines[lo - 1].tag == b" ":
                lo -= 1
            hi = end
            while hi < len(self.lines) and self.lines[hi].tag == b" ":
                hi += 1
            out.append(Hunk(self.lines[lo:hi], self.tail))
        return out

    def text(self) -> bytes:
        """The hunk as a patch fragment (plain), for the editor."""
        out = [self.header() + b"\n"]
        for ln in self.lines:
            out.append(ln.tag + ln.text)
            if not ln.text.endswith(b"\n"):
                out.append(b"\n\\ No newline at end of file\n")
        return b"".join(out)

    def shown(self) -> bytes:
        out = [self.shown_header if self.shown_header is not None
               else ui.visible(self.header())]
        for ln in self.lines:
            out.append(ln.shown)
            if not ln.text.endswith(b"\n"):
                out.append(b"\\ No newline at end of file")
        return b"\n".join(out) + b"\n"


@dataclass
class FileDiff:
    head: list[bytes]  # the diff --git / index / --- / +++ lines as shown
    hunks: list[Hunk] = field(default_factory=list)


def _runs(lines: Sequence[Line]) -> list[tuple[int, int]]:
    """[start, end) of each run of changed lines."""
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        if lines[i].tag == b" ":
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].tag != b" ":
            j += 1
        runs.append((i, j))
        i = j
    return runs


def _blocks(lines: Sequence[Line]) -> list[Block]:
    out = []
    for start, end in _runs(lines):
        run = lines[start:end]
        out.append(Block(run[0].old, tuple(ln.text for ln in run if ln.tag == b"-"),
                         tuple(ln.text for ln in run if ln.tag == b"+")))
    return out


def _strip_color(b: bytes) -> bytes:
    return re.sub(rb"\x1b\[[0-9;]*m", b"", b)


def parse(plain: bytes, colored: bytes | None = None) -> FileDiff:
    """One file's `git diff` output (plain, and the same run with --color=always) as hunks.
    A coloured run whose line count differs from the plain one is not used."""
    p_lines = plain.split(b"\n")
    if p_lines and p_lines[-1] == b"":
        p_lines.pop()
    c_lines = colored.split(b"\n") if colored is not None else []
    if c_lines and c_lines[-1] == b"":
        c_lines.pop()
    if len(c_lines) != len(p_lines):
        c_lines = p_lines
    i = 0
    head: list[bytes] = []
    while i < len(p_lines) and not p_lines[i].startswith(b"@@"):
        head.append(ui.shown_line(p_lines[i], c_lines[i]))
        i += 1
    diff = FileDiff(head)
    hunk: Hunk | None = None
    old = new = 0
    while i < len(p_lines):
        raw = p_lines[i]
        m = _HEADER.match(raw)
        if m:
            old = int(m.group(1)) - (0 if m.group(2) == b"0" else 1)
            new = int(m.group(3)) - (0 if m.group(4) == b"0" else 1)
            hunk = Hunk([], m.group(5), shown_header=ui.shown_line(raw, c_lines[i]))
            diff.hunks.append(hunk)
        elif raw.startswith(b"\\"):
            if hunk is not None and hunk.lines:
                last = hunk.lines[-1]
                hunk.lines[-1] = Line(last.tag, last.text[:-1], last.shown, last.old, last.new)
        elif hunk is not None and raw[:1] in (b" ", b"-", b"+", b""):
            tag = raw[:1] or b" "  # an empty context line (diff.suppressBlankEmpty)
            hunk.lines.append(Line(tag, raw[1:] + b"\n", ui.shown_line(raw, c_lines[i]), old,
                                   new))
            old += tag != b"+"
            new += tag != b"-"
        i += 1
    return diff


def lines_of(data: bytes) -> list[bytes]:
    """data as lines, each with its b"\\n" (the last one without, when data lacks it)."""
    out = data.split(b"\n")
    last = out.pop()
    out = [ln + b"\n" for ln in out]
    if last:
        out.append(last)
    return out


def compose(base: bytes, blocks: Sequence[Block]) -> bytes:
    """The base with these blocks laid on it (they must not overlap)."""
    lines = lines_of(base)
    out: list[bytes] = []
    at = 0
    for b in sorted(blocks, key=lambda b: b.at):
        if b.at < at or tuple(lines[b.at:b.at + len(b.old)]) != b.old:
            raise EditRejected("the hunks overlap or do not match the base")
        out += lines[at:b.at]
        out += b.new
        at = b.at + len(b.old)
    out += lines[at:]
    return b"".join(out)


EDIT_HELP = b"""\
# ---
# To remove '-' lines, make them ' ' lines (context).
# To remove '+' lines, delete them.
# Lines starting with # will be removed.
# If the patch applies cleanly, the edited hunk will immediately be marked for applying.
# If it does not apply cleanly, you will be given an opportunity to
# edit again.  If all lines of the hunk are removed, then the edit is
# aborted and the hunk is left unchanged.
"""


def edit_text(hunk: Hunk) -> bytes:
    return (b"# Manual hunk edit mode -- see bottom for a quick guide.\n" + hunk.text()
            + EDIT_HELP)


def parse_edit(hunk: Hunk, base: bytes, edited: bytes) -> Block | None:
    """The block an edited hunk stands for; None when the user removed every line (edit
    aborted). EditRejected when its old side (context and - lines) is not the base's."""
    tagged: list[tuple[bytes, bytes]] = []
    for raw in edited.split(b"\n")[:-1] if edited.endswith(b"\n") else edited.split(b"\n"):
        if raw.startswith(b"#") or raw.startswith(b"@@"):
            continue
        if raw.startswith(b"\\"):
            if tagged:
                tag, text = tagged[-1]
                tagged[-1] = (tag, text[:-1] if text.endswith(b"\n") else text)
            continue
        tag = raw[:1] or b" "  # an empty line is an empty context line, as git counts it
        if tag not in (b" ", b"-", b"+"):
            raise EditRejected(f"a line starts with {tag!r}, not ' ', '-' or '+'")
        tagged.append((tag, raw[1:] + b"\n"))
    if not tagged:
        return None
    first_old = hunk.lines[0].old
    old = tuple(t for tag, t in tagged if tag != b"+")
    new = tuple(t for tag, t in tagged if tag != b"-")
    if tuple(lines_of(base)[first_old:first_old + len(old)]) != old:
        raise EditRejected("its context and '-' lines are not the file's any more")
    # the context at both ends is no change: leave it out (a neighbour may show it too)
    lead = 0
    while lead < min(len(old), len(new)) and tagged[lead][0] == b" ":
        lead += 1
    trail = 0
    while (trail < min(len(old), len(new)) - lead and tagged[len(tagged) - 1 - trail][0] == b" "):
        trail += 1
    return Block(first_old + lead, old[lead:len(old) - trail], new[lead:len(new) - trail])
