"""The click-free parser of `git agent run` agrees with click wherever it answers."""

from __future__ import annotations

import click
import pytest

from git_agent.cli import main as cli
from git_agent.cli import runargs

ARGVS = [
    [],
    ["claude"],
    ["claude", "--dangerously-skip-permissions", "-s", "x"],
    ["-s", "fix-42", "codex"],
    ["-sfix", "codex"],
    ["--session=a/b", "--", "make", "test"],
    ["--net", "none", "--", "make", "test"],
    ["--net=isolated", "--allow-port", "5432", "--allow-port=6379", "claude"],
    ["--pass-env", "A", "--pass-env", "B", "--hide", ".env", "--mount", ".cargo:cow", "sh"],
    ["--home", "/tmp/h", "--no-capture", "--preset", "claude", "--", "npx", "x"],
    ["--allow-socket", "/run/x.sock", "--", "--weird-command"],
    ["--", "-s", "x"],
    ["-", "x"],
]
FALLBACK = [  # the fast parser hands these to click (help, errors, odd forms)
    ["-h"],
    ["--help"],
    ["--net", "bogus", "x"],
    ["--allow-port", "0", "x"],
    ["--allow-port", "http", "x"],
    ["--allow-port", "\u00b2", "x"],  # a digit to str.isdigit(), not to int()
    ["-s"],
    ["-s", "--net", "none"],
    ["--unknown", "x"],
    ["--no-capture=yes"],
    ["-x"],
]


def click_params(argv: list[str]) -> dict[str, object]:
    ctx = cli.run.make_context("run", list(argv))
    return dict(ctx.params)


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a) or "(none)" for a in ARGVS])
def test_fast_parse_agrees_with_click(argv: list[str]) -> None:
    fast = runargs.fast_parse(argv)
    assert fast is not None
    assert fast == click_params(argv)


@pytest.mark.parametrize("argv", FALLBACK, ids=[" ".join(a) for a in FALLBACK])
def test_unsure_cases_go_to_click(argv: list[str]) -> None:
    assert runargs.fast_parse(argv) is None


def test_every_option_is_in_the_table() -> None:
    names = {p.name for p in cli.run.params if isinstance(p, click.Option)}
    assert names - {"help"} == {o.dest for o in runargs.RUN_OPTIONS}


@pytest.mark.parametrize("argv", [["--sesion", "x", "--", "true"], ["-x", "true"], ["--debug"]])
def test_an_unknown_option_before_the_command_is_refused(argv: list[str]) -> None:
    with pytest.raises(click.NoSuchOption):
        cli.run.make_context("run", list(argv))
