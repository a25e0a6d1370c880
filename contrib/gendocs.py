#!/usr/bin/env python3
"""Regenerate the settings and presets tables of docs/ from keys.KEYS and presets.PRESETS.

    python contrib/gendocs.py           rewrite the generated parts in place
    python contrib/gendocs.py --check   exit 1 if a doc is out of date (the test suite runs it)

The generated parts sit between `BEGIN GENERATED name` / `END GENERATED name` marker lines.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from git_agent.settings import keys, presets  # noqa: E402

MAN = ROOT / "docs" / "git-agent.1"
MD = ROOT / "docs" / "configuration.md"


def roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", text)
    return "\\&" + text if text[:1] in (".", "'") else text


def man_keys() -> str:
    lines = []
    for k in keys.KEYS + keys.NAMED_KEYS:
        lines += [".TP", f".B {k.name}" + (" \\fR(multi\\-valued)" if k.multi else "")]
        bits = [f"Default: {roff(k.default) if k.default else 'none'}."]
        if k.flag:
            bits.append(f"Flag: \\fB{roff(k.flag)}\\fR.")
        lines += [roff(k.doc[:1].upper() + k.doc[1:]) + ".", " ".join(bits)]
    return "\n".join(lines) + "\n"


def _own_env(p: presets.Preset) -> list[str]:
    return [e for e in p.pass_env if e not in presets.NET_ENV]


def man_presets() -> str:
    lines = []
    for p in presets.PRESETS.values():
        env = roff(" ".join(_own_env(p)))
        lines += [".TP", f".B {roff(p.name)}", f"{roff(p.doc)}. Passes: {env}."]
        if p.set_env:
            lines.append("Sets: " + roff(" ".join(f"{k}={v}" for k, v in p.set_env.items())) + ".")
        if p.default_env:
            lines.append("Sets unless you set them: "
                         + roff(" ".join(f"{k}={v}" for k, v in p.default_env.items())) + ".")
        if p.args:
            lines.append(f"Runs {roff(p.name)} with: " + roff(shlex.join(p.args)) + ".")
        if p.mounts:
            lines.append("Mounts read\\-only when present: " + roff(" ".join(p.mounts)) + ".")
        lines.append("Writes in the agent home: " + roff(" ".join(p.home)) + ".")
        kept = [*p.keep, *(f"{f} ({', '.join(keys)})" for f, keys in p.keep_json.items())]
        lines.append("Carried back to the shared agent home after a run: "
                     + roff(" ".join(kept) if kept else "nothing") + ".")
        if p.install:
            lines.append("Install (outside the sandbox): " + roff(p.install) + ".")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def md_keys() -> str:
    rows = ["| Key | Default | Flag | Meaning |", "|---|---|---|---|"]
    for k in keys.KEYS + keys.NAMED_KEYS:
        default = " ".join(f"`{d}`" for d in k.default.split()) if k.multi and k.default \
            else (f"`{k.default}`" if k.default else "(none)")
        name = f"`{k.name}`" + (" (multi)" if k.multi else "")
        rows.append(f"| {name} | {default} | {f'`{k.flag}`' if k.flag else ''} | {_md(k.doc)} |")
    return "\n".join(rows) + "\n"


def md_presets() -> str:
    rows = ["| Preset | Passes when set | Sets | Mounts read-only when present "
            "| Writes in the agent home | Carried back after a run | Install (outside) |",
            "|---|---|---|---|---|---|---|"]
    for p in presets.PRESETS.values():
        env = " ".join(f"`{e}`" for e in _own_env(p))
        sets = " ".join([*(f"`{k}={v}`" for k, v in p.set_env.items()),
                         *(f"`{k}={v}` (unless set)" for k, v in p.default_env.items()),
                         *([f"arguments `{_md(shlex.join(p.args))}`"] if p.args else [])])
        mounts = " ".join(f"`~/{m}`" for m in p.mounts)
        home = " ".join(f"`~/{h}`" for h in p.home)
        install = f"`{_md(p.install)}`" if p.install else ""
        kept = " ".join([*(f"`~/{k}`" for k in p.keep),
                         *(f"`~/{f}` (keys {', '.join(f'`{k}`' for k in keys)})"
                           for f, keys in p.keep_json.items())]) or "nothing"
        rows.append(f"| `{p.name}` ({_md(p.doc)}) | {env} | {sets} | {mounts} | {home} "
                    f"| {kept} | {install} |")
    return "\n".join(rows) + "\n"


SECTIONS: dict[Path, dict[str, Callable[[], str]]] = {
    MAN: {"keys": man_keys, "presets": man_presets},
    MD: {"keys": md_keys, "presets": md_presets},
}


def render(path: Path, text: str) -> str:
    for name, fn in SECTIONS[path].items():
        pat = re.compile(rf"(^[^\n]*BEGIN GENERATED {name}\b[^\n]*\n)(.*?)"
                         rf"(^[^\n]*END GENERATED {name}\b)", re.S | re.M)
        if not pat.search(text):
            raise SystemExit(f"{path}: no BEGIN/END GENERATED {name} markers")
        text = pat.sub(lambda m: m.group(1) + fn() + m.group(3), text)  # noqa: B023
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path in SECTIONS:
        old = path.read_text(encoding="utf-8")
        new = render(path, old)
        if new != old:
            stale.append(path)
            if not check:
                path.write_text(new, encoding="utf-8")
    for path in stale:
        verb = "is out of date: run python contrib/gendocs.py" if check else "updated"
        print(f"{path.relative_to(ROOT)} {verb}", file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
