"""`git agent remote add|list|remove|doctor`: the machines sessions may run on (docs/remote.md)."""

from __future__ import annotations

from pathlib import Path

from git_agent import proc, ui
from git_agent.errors import GitAgentError, UsageError
from git_agent.remote import client, engine, remotes
from git_agent.settings import gitconfig


def _cfg() -> gitconfig.GitConfig:
    return gitconfig.read(Path.cwd())


def _scope(global_: bool) -> list[str]:
    if global_:
        return ["--global"]
    inside = proc.git("rev-parse", "--git-dir", cwd=Path.cwd(), check=False).strip()
    if not inside:
        raise UsageError("not in a git repository: use --global to add the remote for all "
                         "your repositories")
    return ["--local"]


def add(name: str, url: str, *, global_: bool = False) -> int:
    remotes.check_name(name)
    remotes.parse_url(url)
    key = f"{remotes.PREFIX}{name}.url"
    scope = _scope(global_)
    if proc.git("config", *scope, "--get", key, cwd=Path.cwd(), check=False).strip():
        raise UsageError(f"remote {name!r} exists already (`git agent remote remove {name}` "
                         "first)")
    proc.git("config", *scope, key, url, cwd=Path.cwd())
    return 0


def list_() -> int:
    for name, e in sorted(remotes.configured(_cfg()).items()):
        ui.write_stdout(f"{name}\t{e.value}\t{e.scope}\n".encode(errors="surrogateescape"))
    return 0


def remove(name: str) -> int:
    found = remotes.configured(_cfg()).get(name)
    if found is None:
        raise UsageError(f"no remote {name!r}")
    scope = {"global": "--global", "local": "--local", "worktree": "--worktree",
             "system": "--system"}.get(found.scope)
    if scope is None:
        raise GitAgentError(f"remote {name!r} is set in {found.scope} {found.origin}: remove it "
                            "there")
    proc.git("config", scope, "--remove-section", f"{remotes.PREFIX}{name}", cwd=Path.cwd())
    return 0


def doctor(name: str) -> int:
    """Run doctor on the remote through its worker; any failure or FAIL: exit 1."""
    cfg = _cfg()
    target = remotes.lookup(cfg, name)
    eng = engine.connect(target, cfg)
    try:
        eng.open(shared=False)
        answer = client.call(eng, {"op": "doctor"})
    finally:
        eng.close()
    checks = answer.get("checks")
    if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        raise GitAgentError(f"remote {name!r}: the worker's doctor answer is malformed")
    failed = not checks
    for c in checks:
        status = remotes.printable(str(c.get("status", "")))
        print(f"{status:<5} {remotes.printable(str(c.get('name', '')))}: "
              f"{remotes.printable(str(c.get('detail', '')))}")
        if c.get("fix"):
            print(f"      fix: {remotes.printable(str(c['fix']))}")
        failed = failed or status == "FAIL"
    version = remotes.printable(str(answer.get("version", "?")))
    if failed or answer.get("ok") is not True:
        ui.say(f"remote {name!r} (git agent {version}) cannot sandbox an agent yet "
               "(see FAIL above): no session will run there")
        return 1
    ui.say(f"remote {name!r}: git agent {version}, every check passed")
    return 0
