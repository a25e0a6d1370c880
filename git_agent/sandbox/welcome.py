"""What tells you that you are inside: the banner at start, the prompt marker, the start-up
files of a new agent home, and the read-only `git agent` shim on the PATH inside."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from git_agent import proc
from git_agent.sandbox.mounts import Bind, MountPlan

SHIM_DIR = Path("/run/git-agent/bin")  # /run is a private tmpfs inside: nothing else there
MARK = "agent:"  # the prompt shows (agent:SESSION)


def banner(*, session: str, net: str, ports: list[int], hidden: list[str]) -> str:
    """One line said on a terminal when the agent starts."""
    mode = net + (f" (ports {', '.join(map(str, ports))})" if net == "isolated" and ports else "")
    hide = ", ".join(hidden) if hidden else "none"
    return (f"session {session} · network {mode} · hidden: {hide} · exit to capture into "
            f"agent/{session} (inside: git agent status)")


def shim(*, session: str, net: str, ports: list[int], hidden: list[str]) -> str:
    """The `git-agent` program inside: says where you are and what works from there."""
    q = shlex.quote
    mode = net + (f" (ports {', '.join(map(str, ports))})" if net == "isolated" and ports else "")
    hide = " ".join(q(h) for h in hidden) if hidden else "none"
    return f"""#!/bin/sh
# git agent, inside the sandbox of session {session}: made by `git agent run`, read-only here.
session={q(session)}
case "${{1-}}" in
status)
    echo "inside the git agent sandbox of session $session (its work becomes agent/$session)"
    echo "network: {mode}"
    echo "hidden:  "{q(hide)}
    echo "changed since it started (new or modified files; deletions show at capture):"
    top=$(git rev-parse --show-toplevel 2>/dev/null) || top=.
    (cd "$top" && find . -path ./.git -prune -o ! -type d -cnewer "$0" -print 2>/dev/null \\
        | sed 's|^\\./|  |' | sort)
    echo "exit the agent (or this shell) to capture; then, outside: git agent review"
    ;;
""|-h|--help|help)
    echo "usage: git agent status    (inside the sandbox of session $session)"
    echo "run, review, apply, list, drop, doctor and config work outside the sandbox only."
    ;;
*)
    echo "git agent: '$1' works outside the sandbox only; inside: git agent status" >&2
    exit 1
    ;;
esac
"""


def write_shim(session_dir: Path, text: str) -> Path:
    """The shim in the session folder (never visible inside but through its own bind)."""
    d = session_dir / "inside"
    d.mkdir(mode=0o700, exist_ok=True)
    path = d / "git-agent"
    tmp = d / f".git-agent.{os.getpid()}"
    tmp.write_text(text)
    tmp.chmod(0o555)
    os.replace(tmp, path)
    return path


def prepare(plan: MountPlan, *, session_dir: Path, session: str, net: str, ports: list[int],
            hidden: list[str]) -> MountPlan:
    """Write the session's shim and return the plan that shows it inside."""
    text = shim(session=session, net=net, ports=ports, hidden=hidden)
    return with_shim(plan, write_shim(session_dir, text), session=session)


def with_shim(plan: MountPlan, shim_file: Path, *, session: str) -> MountPlan:
    """A copy of the plan with the shim bound read-only on the PATH inside, and the prompt
    marker ($debian_chroot: Debian's and Ubuntu's bash prompt shows it as is)."""
    env = dict(plan.env)
    env["PATH"] = f"{SHIM_DIR}:{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
    env["debian_chroot"] = f"{MARK}{session}"
    return plan.but(mounts=[*plan.mounts, Bind(shim_file, SHIM_DIR / "git-agent", ro=True)],
                    env=env)


_ALIASES = """\
# Your own aliases and functions: the real home is not visible inside. Each session has its own
# copy-on-write copy of this file: what an agent changes here stays in its session and never
# reaches another. Bring yours from OUTSIDE the sandbox, for every later session, e.g.:
# cp ~/.bash_aliases {where}/  (then they load below), or edit this file at {where}/{name}.
"""

# Start-up files a new agent home gets (written once, when missing; yours to edit from outside).
STARTUP = {
    ".profile": """\
# ~/.profile of the git agent home: made by git agent; edit it from outside the sandbox.
if [ -n "$BASH_VERSION" ] && [ -r ~/.bashrc ]; then . ~/.bashrc; fi
""",
    ".bashrc": """\
# ~/.bashrc of the git agent home: made by git agent; edit it from outside the sandbox.
""" + _ALIASES.format(where="the agent home (agent.home, default ~/aihome)", name=".bashrc") + """\
[ -r ~/.bash_aliases ] && . ~/.bash_aliases
for f in ~/.bashrc.d/*.sh; do [ -r "$f" ] && . "$f"; done; unset f
# the prompt says you are inside: (agent:SESSION); Debian's and Ubuntu's default prompt already
# shows $debian_chroot, which git agent sets
case $PS1 in *debian_chroot*|*"(agent:"*) ;; *) PS1="(${debian_chroot:-agent}) ${PS1:-\\$ }" ;; esac
""",
    ".zshrc": """\
# ~/.zshrc of the git agent home: made by git agent; edit it from outside the sandbox.
""" + _ALIASES.format(where="the agent home (agent.home, default ~/aihome)", name=".zshrc") + """\
[ -r ~/.zsh_aliases ] && . ~/.zsh_aliases
for f in ~/.zshrc.d/*.zsh(N); do . "$f"; done; unset f
# the prompt says you are inside: (agent:SESSION)
PROMPT="(${debian_chroot:-agent}) ${PROMPT:-%m%# }"
""",
    ".config/fish/config.fish": """\
# config.fish of the git agent home: made by git agent; edit it from outside the sandbox.
""" + _ALIASES.format(where="the agent home's .config/fish/conf.d", name="config.fish") + """\
# the prompt says you are inside: (agent:SESSION)
if status is-interactive; and functions -q fish_prompt; and not functions -q __git_agent_prompt
    functions -c fish_prompt __git_agent_prompt
    function fish_prompt
        printf '(%s) ' (set -q debian_chroot; and echo $debian_chroot; or echo agent)
        __git_agent_prompt
    end
end
""",
}


def seed_agent_home(agent_home: Path, *, worktree_root: Path) -> None:
    """The start-up files a new agent home gets, each written only when missing (a file, a
    symlink or a dir of that name there is the user's), and the user's git identity."""
    _seed_gitconfig(agent_home, worktree_root)
    for rel, text in STARTUP.items():
        path = agent_home / rel
        if os.path.lexists(path):
            continue
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.parent.is_symlink():
            path.write_text(text)


def _seed_gitconfig(agent_home: Path, worktree_root: Path) -> None:
    """A new agent home gets the user's git identity, so the agent's own commits have one."""
    path = agent_home / ".gitconfig"
    if os.path.islink(path) or (os.path.lexists(path) and path.stat().st_size > 0):
        return  # the user's own (an empty one was made by an older protect step: seed it)
    lines = []
    for key in ("name", "email"):
        value = proc.git("config", f"user.{key}", cwd=worktree_root,
                         check=False).decode().strip()
        if value and "\n" not in value:
            lines.append(f"\t{key} = {json.dumps(value, ensure_ascii=False)}\n")
    text = ("# made by git agent from your git identity; edit it here: a session's own "
            "changes stay in that session\n")
    path.write_text(text + ("[user]\n" + "".join(lines) if lines else ""))
