"""The one wrapper for subprocesses, with git's environment hygiene."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from git_agent.errors import GitAgentError

# Inherited from a parent git (hooks, aliases): they would point our git children elsewhere.
_GIT_LOCAL_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
)


def no_git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCAL_ENV}
    if extra:
        env.update(extra)
    return env


class CalledProcessError(GitAgentError):
    def __init__(self, argv: Sequence[str], returncode: int, stdout: bytes, stderr: bytes):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        err = stderr.decode(errors="replace").strip()
        first = err.splitlines()[-1] if err else f"exit status {returncode}"
        super().__init__(f"{' '.join(self.argv[:3])} failed: {first}")


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv, capturing output; raise CalledProcessError (a GitAgentError) on failure."""
    args = [os.fspath(a) for a in argv]
    # Background work (the base snapshot, while the agent runs) must not get the terminal's ^C
    # meant for the agent: its children go in a process group of their own.
    background = threading.current_thread() is not threading.main_thread()
    try:
        proc = subprocess.run(
            args,
            process_group=0 if background else None,
            cwd=cwd,
            env=dict(env) if env is not None else no_git_env(),
            input=input,
            capture_output=True,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as e:
        raise GitAgentError(f"{args[0]}: not found; is it installed and on PATH?") from e
    if check and proc.returncode != 0:
        raise CalledProcessError(args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def git(
    *args: str | os.PathLike[str],
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> bytes:
    """Run git with a clean GIT_* environment and return its stdout."""
    full_env = no_git_env(env)
    return run(["git", *args], cwd=cwd, env=full_env, input=input, check=check).stdout
