"""`git-agent --help`: the git-agent(1) page shipped with this code, through man if there is one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

NAME = "git-agent.1"


def page_path() -> Path | None:
    """The manual that matches this code: in the package (wheel), else the source checkout."""
    here = Path(__file__).resolve().parent.parent
    for p in (here / "data" / NAME, here.parent / "docs" / NAME,
              Path(sys.prefix) / "share" / "man" / "man1" / NAME):
        if p.is_file():
            return p
    return None


def open_manual() -> int:
    """Show git-agent(1) with man (the user's MANPAGER/PAGER apply), else as plain text."""
    page = page_path()
    man = shutil.which("man")
    if man is not None:
        argv = [man, "-l", os.fspath(page)] if page is not None else [man, "git-agent"]
        from git_agent import ui

        with ui.terminal_signals_to_child():
            return subprocess.run(argv, check=False).returncode
    if page is None:
        ui.say("the manual page is not installed; see `git agent -h`")
        return 1
    text = to_text(page.read_text(encoding="utf-8"))
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return 0


_FONT = re.compile(r"\\f[BIRP]|\\f\(..|\\f\[[A-Z]*\]")
_ESCAPES = {r"\-": "-", r"\(em": "--", r"\(en": "-", r"\(bu": "*", r"\(lq": '"', r"\(rq": '"',
            r"\e": "\\", r"\&": "", r"\ ": " ", r"\|": "", r"\(aq": "'", r"\(dq": '"'}


def _inline(s: str) -> str:
    s = _FONT.sub("", s)
    for k, v in _ESCAPES.items():
        s = s.replace(k, v)
    return s


def _args(rest: str) -> list[str]:
    return [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', rest)]


def to_text(roff: str) -> str:
    """A plain rendering of the man macros this page uses, for machines without man."""
    out: list[str] = []
    indent, tag = 7, 0  # tag: 0 none, 1 the next line is a .TP tag, 2 in its body

    def emit(text: str) -> None:
        nonlocal tag
        out.append(" " * (indent + (7 if tag == 2 else 0)) + text + "\n")
        tag = 2 if tag else 0

    for raw in roff.splitlines():
        if raw.startswith(('.\\"', "'\\\"")) or raw == ".":
            continue
        if not raw.startswith("."):
            emit(_inline(raw))
            continue
        macro, _, rest = raw[1:].partition(" ")
        args = _args(rest)
        if macro == "TH":
            title = _inline(args[0]) if args else ""
            out.append(f"{title}({args[1] if len(args) > 1 else ''})\n")
        elif macro in ("SH", "SS"):
            indent, tag = 7, 0
            out.append(f"\n{'' if macro == 'SH' else '   '}{_inline(' '.join(args))}\n")
        elif macro in ("PP", "P", "LP", "sp"):
            tag = 0
            out.append("\n")
        elif macro == "TP":
            out.append("\n")
            tag = 1
        elif macro == "IP":
            out.append("\n")
            tag = 0
            if args and args[0]:
                emit(_inline(args[0]))
            tag = 2
        elif macro == "RS":
            indent += 4
        elif macro == "RE":
            indent = max(7, indent - 4)
        elif macro in ("B", "I", "SM", "UR"):
            emit(_inline(" ".join(args)))
        elif macro in ("BR", "IR", "RB", "RI", "BI", "IB"):
            emit(_inline("".join(args)))
    return "".join(out)
