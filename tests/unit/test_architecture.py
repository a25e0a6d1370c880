"""The layout by pipeline stage (docs/architecture.md), as rules on every import in git_agent/,
the ones inside functions included: a stage imports only the stages before it, a verb never
imports another verb, and only the command line knows click."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "git_agent"

# Each group's rank: a module may import its own group and groups of a lower rank only.
RANK = {
    "base": 0,  # errors, proc, ui, record, beneath, repo, gittree, session/
    "egress": 1,  # the allow-list and the proxy: base only
    "settings": 2,  # git config keys, presets, resolve()
    "sandbox": 3,  # the mount plan, bwrap, launch, network modes
    "capture": 3,  # the upper dir -> a commit
    "mergeback": 4,  # review's view, risks, apply's engine
    "remote": 4,  # session bundles in and out, remotes, the worker's requests
    "commands": 5,  # one module per verb
    "cli": 6,  # click
    "main": 7,  # the entry point
}


def group(module: str) -> str:
    parts = module.split(".")
    if parts[1:2] == ["__main__"]:
        return "main"
    if len(parts) > 2 and parts[1] in RANK:
        return parts[1]
    return "base"


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The git_agent modules path imports, anywhere in it (`from git_agent.x import y` names
    the module git_agent.x.y when that is one, else git_agent.x)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("git_agent.")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("git_agent"):
            assert node.module is not None
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return out - {"git_agent"}


KNOWN = modules()
EDGES = sorted((m, t) for m, p in KNOWN.items() for t in imports(p, KNOWN))


def test_the_rules_see_every_stage() -> None:
    assert {group(m) for m in KNOWN} == set(RANK)
    assert len(EDGES) > 100  # the walk finds the imports (inside functions too)


@pytest.mark.parametrize("src,dst", EDGES, ids=[f"{s}->{d}" for s, d in EDGES])
def test_a_stage_imports_only_the_stages_before_it(src: str, dst: str) -> None:
    a, b = group(src), group(dst)
    assert a == b or RANK[b] < RANK[a], f"{src} ({a}) imports {dst} ({b})"


def test_a_verb_never_imports_another_verb() -> None:
    bad = [(s, d) for s, d in EDGES
           if s.startswith("git_agent.commands.") and d.startswith("git_agent.commands.")]
    assert bad == []


def test_only_the_command_line_knows_click() -> None:
    users = {m for m, p in KNOWN.items()
             if any(isinstance(n, (ast.Import, ast.ImportFrom))
                    and any(x == "click" or x.startswith("click.")
                            for x in ([a.name for a in n.names] if isinstance(n, ast.Import)
                                      else [n.module or ""]))
                    for n in ast.walk(ast.parse(p.read_text())))}
    assert users and all(group(m) == "cli" for m in users), users
