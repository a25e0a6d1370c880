"""The one wrapper for subprocesses, with git's environment hygiene."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from git_agent.errors import GitAgentError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (launch time)
if TYPE_CHECKING:
    from typing import Any

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


_background_pids: set[int] = set()
_lock = threading.Lock()
_own_groups = 0  # > 0: children go in a process group of their own (ui.uninterrupted)
_stopped = False  # stop_background was called: background threads start no more children


@contextlib.contextmanager
def own_process_groups() -> Iterator[None]:
    """Children started meanwhile get a process group of their own: the terminal's ^C and
    hang-up, sent to git agent's group, do not reach them."""
    global _own_groups
    _own_groups += 1
    try:
        yield
    finally:
        _own_groups -= 1


def stop_background() -> None:
    """Kill what background threads are running, and start no more of it (work nobody will
    wait for any more)."""
    global _stopped
    with _lock:
        _stopped = True
        pids = list(_background_pids)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGTERM)  # git removes its lock files on it; SIGKILL would not


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    stdin_fd: int | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv, capturing output; raise CalledProcessError (a GitAgentError) on failure.
    stdin_fd: an open file to read instead of input (read from its current offset)."""
    at = os.lseek(stdin_fd, 0, os.SEEK_CUR) if stdin_fd is not None else 0
    proc = start(argv, cwd=cwd, env=env, input=input, stdin_fd=stdin_fd)()
    if proc.returncode in _TERMINAL_DEATHS and _own_group():
        # killed by a ^C sent to our group in the instant before it left it: once more
        if stdin_fd is not None:
            os.lseek(stdin_fd, at, os.SEEK_SET)
        proc = start(argv, cwd=cwd, env=env, input=input, stdin_fd=stdin_fd)()
    if check and proc.returncode != 0:
        raise CalledProcessError(proc.args, proc.returncode, proc.stdout, proc.stderr)
    return proc


_TERMINAL_DEATHS = (-signal.SIGINT, -signal.SIGQUIT, -signal.SIGHUP)


def _background() -> bool:
    return threading.current_thread() is not threading.main_thread()


def _own_group() -> bool:
    # Background work (the base snapshot, while the agent runs) must not get the terminal's ^C
    # meant for the agent, nor work that ^C must not cut short (ui.uninterrupted): its
    # children go in a process group of their own.
    return _background() or bool(_own_groups)


def start(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    stdin_fd: int | None = None,
) -> Callable[[], subprocess.CompletedProcess[bytes]]:
    """Start argv now, capturing its output; the function returned feeds it input, waits for
    it and returns its result (not checked). Started apart, commands need not wait for each
    other (launch: git rev-parse beside git config)."""
    args = [os.fspath(a) for a in argv]
    background = _background()
    # a background child is started and recorded under the lock stop_background takes: none
    # can start unseen, after it killed the others
    with _lock if background else contextlib.nullcontext():
        if background and _stopped:
            raise GitAgentError(f"{args[0]}: not started, git agent is ending")
        try:
            child = subprocess.Popen(
                args,
                process_group=0 if _own_group() else None,
                cwd=cwd,
                env=dict(env) if env is not None else no_git_env(),
                stdin=(stdin_fd if stdin_fd is not None
                       else subprocess.PIPE if input is not None else subprocess.DEVNULL),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError as e:
            raise GitAgentError(f"{args[0]}: not found; is it installed and on PATH?") from e
        if background:
            _background_pids.add(child.pid)

    def result() -> subprocess.CompletedProcess[bytes]:
        try:
            out, err = child.communicate(input)
        finally:
            if background:
                with _lock:
                    _background_pids.discard(child.pid)
        return subprocess.CompletedProcess(args, child.returncode, out, err)

    return result


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


def which(name: str) -> str | None:
    """The executable `name` (a bare name) found in the absolute directories of PATH.

    Not shutil.which: importing shutil costs ~2 ms of launch. Unlike it, an empty or relative
    PATH entry is skipped: it would find a program in the repository the user is in."""
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        p = os.path.join(d, name)
        if os.path.isabs(d) and os.access(p, os.X_OK) and not os.path.isdir(p):
            return p
    return None


def probe_cached(exe: Path, cache: Path | None, probe: Callable[[], Any]) -> Any:
    """What probe() answers about the executable exe, remembered in the JSON file cache for as
    long as exe's stat is unchanged (a replaced or upgraded binary is probed again). A probe
    answering None is not remembered."""
    key = os.fspath(exe)
    stamp = None
    if cache is not None:
        try:
            st = os.stat(exe)
            stamp = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
            known = json.loads(cache.read_text()).get(key)
            if isinstance(known, list) and len(known) == 2 and known[0] == stamp:
                return known[1]
        except (OSError, ValueError, TypeError, AttributeError):
            pass
    answer = probe()
    if answer is not None and stamp is not None and cache is not None:
        try:
            try:
                data = json.loads(cache.read_text())
                data = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                data = {}
            data[key] = [stamp, answer]
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, cache)
        except OSError:
            pass  # no cache: the next launch probes again
    return answer
