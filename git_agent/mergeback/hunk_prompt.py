"""`git agent apply -p`: the session's changes asked hunk by hunk with `git add -p`'s keys and
colours; a change that is not text lines (binary, symlink, mode, added, deleted) asked whole."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from git_agent import proc, ui
from git_agent.errors import GitAgentError
from git_agent.gittree import BLOB, EXEC
from git_agent.mergeback import hunks as H
from git_agent.mergeback.marks import Mark
from git_agent.mergeback.view import TAG, FileChange, View, blob, repo_of

HUNK_HELP = """\
y - apply this hunk to your worktree
n - do not apply this hunk (it stays in the session)
q - quit; do not apply this hunk or any of the remaining ones (they stay in the session)
a - apply this hunk and all later hunks in the file
d - do not apply this hunk or any of the later hunks in the file; discard them from the session
s - split the current hunk into smaller hunks
e - manually edit the current hunk
? - print help"""

WHOLE_HELP = """\
y - apply this change to your worktree
n - do not apply it (it stays in the session)
q - quit; do not apply this change or any of the remaining ones (they stay in the session)
a - apply it (and all later hunks of the file: it has no others)
d - do not apply it; discard it from the session (your worktree keeps its version)
? - print help"""


@dataclass
class Partial:
    """A text file some of whose hunks were answered: the base with the hunks taken (None:
    none taken), the base with the hunks kept in the session (None: none kept), and what the
    session's file then holds: the base with both (partial_base.py says why)."""

    change: FileChange
    taken: bytes | None
    kept: bytes | None
    upper: bytes | None = None
    discarded: bool = True  # False: every hunk taken (one edited), none discarded


Answered = tuple[bytes, list[H.Block], list[H.Block], list[H.Block]]


@dataclass
class Selection:
    whole: list[FileChange] = field(default_factory=list)  # apply as it is
    reject: list[FileChange] = field(default_factory=list)  # drop from the session
    partial: list[Partial] = field(default_factory=list)
    hunked: set[bytes] = field(default_factory=set)  # the files asked hunk by hunk
    # of each file some hunks of which were taken: (base, taken, kept, discarded blocks)
    blocks: dict[bytes, Answered] = field(default_factory=dict)


class _Quit(Exception):
    pass


class _Asker:
    def __init__(self, view: View):
        self.view = view
        self.cwd = view.worktree.root
        self.color = ui.use_color(cwd=self.cwd)

    def _color(self, slot: str, default: str) -> str:
        if not self.color:
            return ""
        out = proc.git("config", "--get-color", slot, default, cwd=self.cwd, check=False)
        return out.decode(errors="replace")

    def ask(self, question: str) -> str:
        return ui.ask(ui.paint(question, self._color("color.interactive.prompt", "bold blue"),
                               color=self.color) if self.color else question)

    def help(self, text: str) -> None:
        code = self._color("color.interactive.help", "red bold")
        for line in text.splitlines():
            ui.echo(ui.paint(line, code, color=self.color) if self.color else line)

    def diff(self, c: FileChange) -> tuple[bytes, bytes | None]:
        spec = ":(top,literal)" + c.path.decode("utf-8", "surrogateescape")
        argv = ["git", "-c", "diff.suppressBlankEmpty=false", "diff", "--no-ext-diff",
                "--no-textconv", "--no-renames"]
        plain = proc.run([*argv, "--color=never", self.view.base, self.view.head, "--", spec],
                         cwd=self.cwd).stdout
        colored = (proc.run([*argv, "--color=always", self.view.base, self.view.head, "--",
                             spec], cwd=self.cwd).stdout if self.color else None)
        return plain, colored


def _text_change(c: FileChange) -> bool:
    return (c.status == "modified" and c.old_mode == c.new_mode and c.old_mode in (BLOB, EXEC))


def choose(view: View, picked: Sequence[FileChange],
           marks: Mapping[bytes, Mark]) -> Selection:
    """Ask hunk by hunk (whole for what is not text lines). EOF raises Aborted."""
    asker = _Asker(view)
    sel = Selection()
    repo = repo_of(view.worktree)
    try:
        for c in picked:
            plain, colored = asker.diff(c)
            diff = H.parse(plain, colored)
            base = blob(repo, c.old_oid, c.old_mode)
            hunked = _text_change(c) and bool(diff.hunks) and base is not None
            mark = marks.get(c.path)
            said = "" if mark is None else f" ({mark.text})"
            if mark is not None and mark.conflict and hunked:
                said = (f" (conflicts: {mark.why}; a hunk you take that overlaps your "
                        "changes is not applied: it stays in the session, unless --merge)")
            ui.echo(f"[{TAG[c.status]}] {c.shown}{said}")
            for r in c.risks:
                ui.echo(f"  ! {r}")
            if hunked:
                assert base is not None
                sel.hunked.add(c.path)
                _ask_hunks(asker, c, diff, base, sel)
            else:
                _ask_whole(asker, c, diff, plain, colored, sel)
    except _Quit:
        pass
    return sel


def _ask_whole(asker: _Asker, c: FileChange, diff: H.FileDiff, plain: bytes,
               colored: bytes | None, sel: Selection) -> None:
    ui.write_stdout(ui.shown_diff(plain, colored))  # the agent's bytes made visible
    what = {"added": "addition", "deleted": "deletion"}.get(c.status)
    if what is None:
        what = "mode change" if c.old_mode != c.new_mode and c.old_oid == c.new_oid else "change"
    while True:
        a = asker.ask(f"(1/1) Apply {what} to your worktree [y,n,q,a,d,?]? ")
        if a in ("y", "a"):
            sel.whole.append(c)
            return
        if a == "n":
            return
        if a == "d":
            sel.reject.append(c)
            return
        if a == "q":
            raise _Quit
        asker.help(WHOLE_HELP)


def _ask_hunks(asker: _Asker, c: FileChange, diff: H.FileDiff, base: bytes,
               sel: Selection) -> None:
    ui.write_stdout(b"\n".join(diff.head) + b"\n")
    todo: list[H.Hunk] = list(diff.hunks)
    answers: list[str | None] = [None] * len(todo)
    frag = asker._color("color.diff.frag", "cyan")
    i = 0
    quit_ = False
    while i < len(todo):
        if answers[i] is not None:
            i += 1
            continue
        h = todo[i]
        shown = h.shown()
        if h.shown_header is None and asker.color:
            first, _, rest = shown.partition(b"\n")
            shown = ui.paint(first.decode(errors="surrogateescape"), frag,
                             color=True).encode(errors="surrogateescape") + b"\n" + rest
        ui.write_stdout(shown)
        keys = "y,n,q,a,d" + (",s" if h.splittable() else "") + ",e,?"
        a = asker.ask(f"({i + 1}/{len(todo)}) Apply this hunk to your worktree [{keys}]? ")
        if a in ("y", "n"):
            answers[i] = a
        elif a in ("a", "d"):
            for j in range(i, len(todo)):
                answers[j] = answers[j] or ("y" if a == "a" else "d")
        elif a == "q":
            quit_ = True
            break
        elif a == "s" and h.splittable():
            parts = h.split()
            ui.echo(f"Split into {len(parts)} hunks.")
            todo[i:i + 1] = parts
            answers[i:i + 1] = [None] * len(parts)
            continue
        elif a == "e":
            if _edit(asker, h, base):
                answers[i] = "y"
            continue
        elif a == "s":
            ui.echo("Sorry, cannot split this hunk")
            continue
        else:
            asker.help(HUNK_HELP)
            continue
        i += 1
    taken = [b for h, ans in zip(todo, answers, strict=True) if ans == "y" for b in h.blocks()]
    kept = [b for h, ans in zip(todo, answers, strict=True) if ans in (None, "n")
            for b in h.blocks()]
    discarded = [b for h, ans in zip(todo, answers, strict=True) if ans == "d"
                 for b in h.blocks()]
    dropped = any(ans == "d" for ans in answers)
    edited = any(h.edited is not None for h, ans in zip(todo, answers, strict=True)
                 if ans == "y")
    if taken:
        sel.blocks[c.path] = (base, taken, kept, discarded)
    if taken and not kept and not dropped and not edited:
        sel.whole.append(c)  # every hunk as the agent wrote it: its file, whole
    elif not taken and not kept and dropped:
        sel.reject.append(c)
    elif taken or dropped:  # an edit: the base with the hunks as you took them
        try:
            sel.partial.append(Partial(c, H.compose(base, taken) if taken else None,
                                       H.compose(base, kept) if kept else None,
                                       H.compose(base, taken + kept) if kept else None,
                                       discarded=dropped))
        except H.EditRejected as e:
            raise GitAgentError(f"{c.shown}: edited hunks overlap ({e}); nothing was "
                                "applied") from e
    if quit_:
        raise _Quit


def _edit(asker: _Asker, h: H.Hunk, base: bytes) -> bool:
    """Edit the hunk in the user's editor (git's rules: GIT_EDITOR, core.editor, VISUAL,
    EDITOR); True when an edit that applies replaced it."""
    editor = proc.git("var", "GIT_EDITOR", cwd=asker.cwd).decode().strip()
    text = H.edit_text(h)
    while True:
        with tempfile.TemporaryDirectory(prefix="git-agent-hunk-") as tmp:
            path = os.path.join(tmp, "addp-hunk-edit.diff")
            with open(path, "wb") as f:
                f.write(text)
            r = subprocess.run(["sh", "-c", editor + ' "$@"', editor, path], cwd=asker.cwd,
                               check=False)
            if r.returncode != 0:
                ui.echo("There was a problem with the editor; the hunk is left unchanged.")
                return False
            with open(path, "rb") as f:
                text = f.read()
        try:
            block = H.parse_edit(h, base, text)
        except H.EditRejected as e:
            ui.echo(f"Your edited hunk does not apply ({e}).")
            a = asker.ask("Edit again (saying \"no\" discards!) [y/n]? ")
            if a.lower().startswith("y"):
                continue
            return False
        if block is None:
            return False
        h.edited = block
        return True
