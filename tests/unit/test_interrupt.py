"""^C at any moment of git agent's life is one line or a plain death by SIGINT, never a
traceback or an "internal error"."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python(script: str, *, ignore_int: bool = False) -> subprocess.CompletedProcess[str]:
    def preexec() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_int else signal.SIG_DFL)

    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, preexec_fn=preexec)


def test_a_ctrl_c_while_git_agent_starts_kills_it_without_a_traceback() -> None:
    # __main__ is the first module of git agent the console script runs; anything after it
    # (the fast path's imports, click's) is start-up until guarded takes over
    p = python("import os, signal\nimport git_agent.__main__\nimport git_agent.cli\n"
               "os.kill(os.getpid(), signal.SIGINT)\nimport time; time.sleep(5)\nprint('alive')")
    assert p.returncode == -signal.SIGINT and p.stderr == "" and "alive" not in p.stdout


def test_a_ctrl_c_ignored_by_the_caller_stays_ignored() -> None:
    p = python("import os, signal\nimport git_agent.__main__\n"
               "os.kill(os.getpid(), signal.SIGINT)\nprint(signal.getsignal(2) is signal.SIG_IGN)",
               ignore_int=True)
    assert p.returncode == 0 and p.stdout == "True\n"


GUARDED = """
import os, signal, sys, time
import git_agent.__main__
from git_agent import errors

def command():
    {body}

sys.exit(errors.guarded(command, debug=False))
"""

# a ^C cut short inside C code that turned it into its own error (PyCapsule_Import does: an
# interrupted import of _socket comes out as "ImportError: PyCapsule_Import could not import")
INTERRUPTED_IMPORT = """try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        pass
    raise ImportError('PyCapsule_Import could not import module "_socket"')"""


def test_in_a_command_a_ctrl_c_is_one_line_even_turned_into_another_error() -> None:
    for body in ("os.kill(os.getpid(), signal.SIGINT); time.sleep(5)", INTERRUPTED_IMPORT):
        p = python(GUARDED.format(body=body))
        assert (p.returncode, p.stderr) == (130, "git agent: interrupted\n"), body


def test_without_a_ctrl_c_a_bug_is_still_a_bug() -> None:
    p = python(GUARDED.format(body="raise ImportError('x')"))
    assert p.returncode == 1
    assert p.stderr == "git agent: internal error: ImportError: x (rerun with --debug)\n"
