"""`git agent run CMD` finds CMD as the sandbox will (its PATH, its mounts) before it creates a
session or a ref: a missing agent, a typo or a missing interpreter exit 127 with the fix."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.conftest import Actor


def nothing_created(actor: Actor, repo: Path) -> None:
    assert not list((actor.home / ".local/state/git-agent").glob("*/sessions/*"))
    assert actor.git("for-each-ref", "refs/agent-base", "refs/heads/agent", cwd=repo) == ""


def one_line(p: object) -> str:
    stderr = p.stderr  # type: ignore[attr-defined]
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("git agent: "), stderr
    return str(lines[0])


def path_env(*first: Path) -> dict[str, str]:
    """A PATH without any agent installed: the test's own dirs, git-agent's, the system's."""
    dirs = [*map(str, first), str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    return {"PATH": ":".join(dirs)}


def executable(path: Path, text: str = "#!/bin/sh\necho ran\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def test_a_missing_agent_says_how_to_install_it(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "codex", cwd=repo, env=path_env())
    assert p.returncode == 127
    line = one_line(p)
    assert line.startswith("git agent: codex: not found inside the sandbox (PATH ")
    assert line.endswith("Install: npm i -g @openai/codex")
    nothing_created(actor, repo)


def test_a_typo_gets_did_you_mean(actor: Actor) -> None:
    repo = actor.make_repo()
    p = actor.agent("run", "claud", cwd=repo, env=path_env())
    assert p.returncode == 127
    assert one_line(p).endswith("; did you mean claude?")
    p = actor.agent("run", "--", "gti", "status", cwd=repo, env=path_env())  # a command on PATH
    assert p.returncode == 127 and one_line(p).endswith("; did you mean git?")
    nothing_created(actor, repo)


def test_the_agent_home_is_searched_not_the_real_home(actor: Actor) -> None:
    """$HOME/bin inside is the agent home's bin: a tool only in the real home's is not there
    (and the message says where it is outside and what to mount); mounted, it runs."""
    repo = actor.make_repo()
    real_bin, agent_bin = actor.home / "tools", actor.home / "aihome" / "bin"
    executable(real_bin / "onlyoutside")
    executable(agent_bin / "inagenthome")
    for d in (real_bin, agent_bin):
        actor.own(d.parent)
    env = path_env(actor.home / "bin", real_bin)
    p = actor.agent("run", "inagenthome", cwd=repo, env=env)
    assert (p.returncode, p.stdout) == (0, "ran\n"), p.stderr
    p = actor.agent("run", "onlyoutside", cwd=repo, env=env)
    assert p.returncode == 127
    line = one_line(p)
    assert "onlyoutside: not found inside the sandbox" in line
    assert f"outside it is {real_bin}/onlyoutside" in line and f"--mount {real_bin}" in line
    p = actor.agent("run", "--mount", "tools", "--", "onlyoutside", cwd=repo, env=env)
    assert (p.returncode, p.stdout) == (0, "ran\n"), p.stderr


def test_a_script_whose_interpreter_is_missing_inside(actor: Actor) -> None:
    repo = actor.make_repo()
    executable(repo / "agent.sh", "#!/usr/bin/env no-such-interpreter\n")
    executable(repo / "ok.sh", "#!/usr/bin/env sh\necho fine\n")
    actor.own(repo)
    p = actor.agent("run", "--", "./agent.sh", cwd=repo, env=path_env())
    assert p.returncode == 127
    assert "./agent.sh: its interpreter no-such-interpreter is not found inside" in one_line(p)
    nothing_created(actor, repo)
    p = actor.agent("run", "--no-capture", "--", "./ok.sh", cwd=repo, env=path_env())
    assert (p.returncode, p.stdout) == (0, "fine\n"), p.stderr


def test_a_symlink_into_an_unmounted_dir_is_not_found(actor: Actor) -> None:
    """~/.local/bin is mounted, but a link there into a dir that is not shows nothing inside."""
    repo = actor.make_repo()
    target = actor.home / "elsewhere" / "linked-tool"
    executable(target)
    link_dir = actor.home / ".local" / "bin"
    link_dir.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link_dir / "linked-tool")
    actor.own(actor.home / ".local")
    actor.own(actor.home / "elsewhere")
    p = actor.agent("run", "linked-tool", cwd=repo, env=path_env(link_dir))
    assert p.returncode == 127 and "linked-tool: not found inside" in one_line(p)
    nothing_created(actor, repo)
