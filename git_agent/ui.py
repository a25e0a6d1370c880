"""Terminal helpers: colour as git decides it, git's pager, and line prompts that read stdin."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from git_agent import proc
from git_agent.errors import PREFIX, Aborted, silence, write_err

RED, YELLOW, GREEN, BOLD, RESET = "\033[31m", "\033[33m", "\033[32m", "\033[1m", "\033[m"


def stdout_is_tty() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (OSError, ValueError):
        return False


def use_color(*, cwd: Path, slot: str = "color.diff") -> bool:
    """Whether stdout gets colour: NO_COLOR wins, then git's color.<slot>/color.ui for a tty."""
    if os.environ.get("NO_COLOR"):
        return False
    tty = stdout_is_tty()
    out = proc.git("config", "--get-colorbool", slot, "true" if tty else "false", cwd=cwd,
                   check=False)
    return out.strip() == b"true"


def paint(text: str, code: str, *, color: bool) -> str:
    return f"{code}{text}{RESET}" if color else text


def pager_command(*, cwd: Path) -> str | None:
    """The user's pager as git picks it (GIT_PAGER, core.pager, PAGER, less), None to not page."""
    if not stdout_is_tty():
        return None
    cmd = proc.git("var", "GIT_PAGER", cwd=cwd, check=False).decode(errors="replace").strip()
    return None if cmd in ("", "cat") else cmd


def page(data: bytes, *, cwd: Path) -> None:
    """Write data to stdout through the user's pager (as git runs it), or straight when none."""
    cmd = pager_command(cwd=cwd)
    if cmd is None:
        write_stdout(data)
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    sys.stdout.flush()
    with terminal_signals_to_child():
        subprocess.run(cmd, shell=True, input=data, cwd=cwd, env=env, check=False)


@contextlib.contextmanager
def terminal_signals_to_child() -> Iterator[None]:
    """While a pager (or man) runs in the foreground, ^C and ^\\ are its to handle (less
    stops a search with ^C): git agent waits, as git does. A handler that does nothing, not
    SIG_IGN: exec gives a handled signal back its default in the child, an ignored one stays
    ignored there. Main thread only."""

    def wait(_signum: int, _frame: object) -> None:
        pass

    with _handled((signal.SIGINT, signal.SIGQUIT), wait):
        yield


@contextlib.contextmanager
def _handled(signals: Iterable[int], handler: Callable[[int, object], None]) -> Iterator[None]:
    """handler for each of the signals meanwhile, but those ignored now (an ignored signal
    stays ignored); the old handlers back after."""
    old = {s: signal.signal(s, handler) for s in signals if signal.getsignal(s) != signal.SIG_IGN}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # e.g. `git agent review | head`: the reader is done; not an error
        silence(sys.stdout)


_C_ESCAPES = {0x07: "a", 0x08: "b", 0x09: "t", 0x0A: "n", 0x0B: "v", 0x0C: "f", 0x0D: "r",
              0x22: '"', 0x5C: "\\"}


def quote_path(path: bytes | str) -> str:
    """A path for a person, quoted as git does with core.quotePath: unchanged when plain,
    else in double quotes with C escapes (\\n, \\r, \\", \\\\) and octal for other control
    bytes, DEL and every byte >= 0x80 (so no name can move the cursor or recolour a terminal)."""
    raw = os.fsencode(path) if isinstance(path, str) else path
    if not any(b < 0x20 or b >= 0x7F or b in (0x22, 0x5C) for b in raw):
        return raw.decode("ascii")
    out = ['"']
    for b in raw:
        if b in _C_ESCAPES:
            out.append("\\" + _C_ESCAPES[b])
        elif b < 0x20 or b >= 0x7F:
            out.append(f"\\{b:03o}")
        else:
            out.append(chr(b))
    out.append('"')
    return "".join(out)


# what in a line of file content could move the cursor, recolour or reorder what a terminal
# shows: C0 controls but tab, DEL, C1 controls (U+0080..U+009F, and such bytes outside UTF-8),
# the bidi embeddings, overrides and isolates, and the line and paragraph separators
_INVISIBLE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
    "\udc80-\udc9f]")
_SGR = re.compile(rb"(?:\x1b\[[0-9;]*m)+")


def _visible_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDC9F:  # a byte 0x80..0x9f that is not UTF-8
        return f"\\{c - 0xDC00:03o}"
    if c < 0x20 or c == 0x7F:
        return "\\" + _C_ESCAPES[c] if c in _C_ESCAPES else f"\\{c:03o}"
    return f"<U+{c:04X}>"


def visible(line: bytes) -> bytes:
    """A line of file content (no newline) for a terminal: each character of _INVISIBLE
    shown as an escape (\\r, \\033, <U+202E>); tabs, text and other bytes as they are."""
    text = line.decode("utf-8", "surrogateescape")
    if not _INVISIBLE.search(text):
        return line
    return _INVISIBLE.sub(_visible_char, text).encode("utf-8", "surrogateescape")


def shown_line(plain: bytes, colored: bytes) -> bytes:
    """What to print of one line git printed plain and coloured: the coloured line when the
    plain one has nothing to escape (its escapes are all git's), else the plain line made
    visible in the colour git opened the line with."""
    safe = visible(plain)
    if safe == plain:
        return colored
    lead = _SGR.match(colored)
    return safe if lead is None else lead.group() + safe + b"\x1b[m"


def shown_diff(plain: bytes, colored: bytes | None) -> bytes:
    """A whole `git diff` output for a terminal (its plain and its coloured run), line by line
    as shown_line; the plain run alone when the two do not line up."""
    p = plain.split(b"\n")
    c = colored.split(b"\n") if colored is not None else p
    if len(c) != len(p):
        c = p
    return b"\n".join(shown_line(a, b) for a, b in zip(p, c, strict=True))


def say(message: str) -> None:
    """The one way to tell the user something: `git agent: MESSAGE` on stderr."""
    write_err(PREFIX + message)


def echo(text: str) -> None:
    """A line of a verb's report on stderr, as is (apply's file list, its help)."""
    write_err(text)


def ask(question: str) -> str:
    """Ask on stderr, read one line from stdin; end of input aborts (raises Aborted)."""
    sys.stderr.write(question)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        sys.stderr.write("\n")
        raise Aborted("end of input at a prompt; nothing was changed")
    return line.strip()


_drawing = False  # a progress line is on the terminal, with no newline yet


class Progress:
    """`what: n/total` redrawn on a terminal's stderr (10 times a second at most) for long
    steps; silent when stderr is not a terminal or the step is short."""

    def __init__(self, what: str, total: int, *, min_total: int = 500):
        try:
            tty = os.isatty(sys.stderr.fileno())
        except (OSError, ValueError):
            tty = False
        self.on = tty and total >= min_total
        self.what, self.total, self.n, self.last = what, total, 0, 0.0

    def step(self, k: int = 1) -> None:
        self.n += k
        if self.on:
            import time

            now = time.monotonic()
            if now - self.last >= 0.1 or self.n >= self.total:
                self.last = now
                self._show(f"\r{self.what}: {self.n}/{self.total}")

    def done(self) -> None:
        if self.on:
            self._show("\r\033[K")

    def _show(self, text: str) -> None:
        global _drawing
        _drawing = not text.endswith("\033[K")
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except OSError:  # the terminal hung up: the work goes on, unseen
            self.on = False


# Every signal whose default is to end the process and that can be caught, but the ones
# that say the process itself went wrong (SEGV, BUS, ...): ^C, ^\\, hang-up, kill's SIGTERM,
# and the ones a stray `kill -USR1` or a timer would send.
HELD_SIGNALS = tuple(getattr(signal, name) for name in (
    "SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM",
    "SIGPROF", "SIGIO", "SIGPWR", "SIGSTKFLT") if hasattr(signal, name))


@contextlib.contextmanager
def uninterrupted(notice: str | None = None) -> Iterator[list[int]]:
    """^C, ^\\, hang-up, SIGTERM (every HELD_SIGNALS) wait until the block is done: what it
    writes is written whole (a kill -9 or a power cut still can stop it). Yields the list of
    the signals that came meanwhile: the caller says what was done, then hands them to act_on.
    notice: said (`git agent: NOTICE`) at once when the first of them comes, so that a ^C
    during a long write is answered. A signal ignored when the block starts (nohup's SIGHUP)
    stays ignored. Main thread only.

    The signals are noted by handlers, not blocked, so that programs started meanwhile (git,
    its hooks) do not inherit a blocked mask; they run in a process group of their own, where
    the terminal's ^C does not reach them."""
    got: list[int] = []

    def note(signum: int, _frame: object) -> None:
        if notice is not None and not got:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(("\n" if _drawing else "") + PREFIX + notice + "\n")
                sys.stderr.flush()
        got.append(signum)

    with _handled(HELD_SIGNALS, note), proc.own_process_groups():
        yield got


def finished_then_act_on(signals: list[int], what: str) -> None:
    """After `what` (apply, the copy) ran uninterrupted while signals came: say that it
    finished whole, then act_on them. Nothing when none came."""
    if signals:
        say(f"interrupted, after {what} finished (it does not stop halfway)")
        act_on(signals)


def act_on(signals: list[int]) -> None:
    """Do what the first of the signals held by uninterrupted would have done: end git agent,
    killed by it (so a shell sees a ^C as a ^C)."""
    for signum in dict.fromkeys(signals):
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
