"""The command line as users meet it: help, manual, completion, config precedence, colour."""

from __future__ import annotations

import importlib.util
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from git_agent.cli import manpage
from git_agent.settings import keys, presets
from tests.conftest import Actor

REPO = Path(__file__).resolve().parents[2]
MAN = REPO / "docs" / "git-agent.1"
CONF_MD = REPO / "docs" / "configuration.md"
VERBS = ("run", "review", "apply", "capture", "list", "drop", "doctor", "config", "completion")
GIT_BASH_COMPLETION = Path("/usr/share/bash-completion/completions/git")


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("git agent: "), p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    return lines[0]


# -- help and the manual ---------------------------------------------------------------------


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_short_help_with_examples(user_actor: Actor, verb: str) -> None:
    p = user_actor.agent(verb, "-h", cwd=user_actor.base)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"Usage: git agent {verb}")
    examples = p.stdout.split("Examples:", 1)[1]
    assert f"git agent {verb}" in examples
    assert p.stderr == ""


def test_top_level_help_lists_every_verb(user_actor: Actor) -> None:
    p = user_actor.agent("-h", cwd=user_actor.base)
    assert p.returncode == 0 and "Examples:" in p.stdout
    for verb in VERBS:
        assert f"\n  {verb} " in p.stdout


@pytest.mark.parametrize("argv", [["git", "agent", "--help"], ["git-agent", "--help"]])
def test_long_help_opens_the_manual(user_actor: Actor, argv: list[str]) -> None:
    """git turns `git agent --help` into `man git-agent` (the installed page); git-agent's own
    --help shows the page shipped with the code (man -l)."""
    p = user_actor.run(argv, cwd=user_actor.base, env={"MANPAGER": "cat", "MANWIDTH": "100"})
    assert p.returncode == 0, p.stderr
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "CONFIGURATION", "EXIT STATUS",
                    "ENVIRONMENT", "FILES", "SECURITY", "EXAMPLES"):
        assert f"\n{section}\n" in p.stdout
    assert "agent.allowSocket" in p.stdout  # the generated part: this page, not a stale copy


def test_git_help_agent_finds_the_installed_page(user_actor: Actor) -> None:
    p = user_actor.run(["git", "help", "agent"], cwd=user_actor.base, env={"MANPAGER": "cat"})
    assert p.returncode == 0, p.stderr
    assert "git-agent" in p.stdout and "NAME" in p.stdout


def test_manual_without_man_is_plain_text(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "LANG": "C.UTF-8"}  # no man on PATH
    p = subprocess.run([sys.executable, "-m", "git_agent", "--help"], env=env, cwd=REPO,
                       capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    assert "EXIT STATUS" in p.stdout and "agent.allowPort" in p.stdout
    assert "--net isolated" in p.stdout
    assert "\\f" not in p.stdout and "\\-" not in p.stdout
    assert not [line for line in p.stdout.splitlines() if line.startswith(".")]


def test_man_page_is_valid_roff() -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    p = subprocess.run(["groff", "-man", "-ww", "-z", str(MAN)], capture_output=True, text=True,
                       check=False)
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_docs_list_every_setting_and_preset() -> None:
    man, md = MAN.read_text(), CONF_MD.read_text()
    for k in keys.KEYS:
        assert f".B {k.name}" in man, k.name
        assert f"`{k.name}`" in md, k.name
    for name in presets.PRESETS:
        assert f".B {name.replace('-', chr(92) + '-')}" in man, name
        assert f"`{name}`" in md, name
    p = subprocess.run([sys.executable, str(REPO / "contrib" / "gendocs.py"), "--check"],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr  # the generated tables match the code


# how pip says it could not get the build backend from the index: no test of ours
_NO_INDEX = ("could not find", "no matching distribution", "connection", "timed out",
             "max retries", "name resolution", "unreachable", "sslerror", "proxyerror",
             "could not fetch url", "httperror", "http error")


def test_man_page_is_in_the_wheel(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q",
            "-w", str(tmp_path)]
    # the build backend at hand: no index needed, so nothing to skip for
    offline = importlib.util.find_spec("hatchling") is not None
    if offline:
        argv.append("--no-build-isolation")
    try:  # under pytest's own timeout (300 s), to tell a stuck download apart
        p = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=240)
    except subprocess.TimeoutExpired:
        if offline:
            raise
        pytest.skip("pip wheel took over 240 s (fetching hatchling from a slow index?)")
    if (p.returncode != 0 and not offline
            and any(w in p.stderr.lower() for w in _NO_INDEX)):
        pytest.skip(f"cannot build a wheel here (no index?): {p.stderr[-300:]}")
    assert p.returncode == 0, p.stderr
    (wheel,) = tmp_path.glob("git_agent-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        man = [n for n in names if n.endswith(".data/data/share/man/man1/git-agent.1")]
        assert len(man) == 1, names
        assert z.read(man[0]) == MAN.read_bytes()
        assert z.read("git_agent/data/git-agent.1") == MAN.read_bytes()


def test_plain_text_rendering_keeps_the_words() -> None:
    text = manpage.to_text(".TH X 1\n.SH NAME\nx \\- y\n.TP\n.B \\-\\-net\nMode \\fBhost\\fR.\n")
    assert text == "X(1)\n\nNAME\n       x - y\n\n       --net\n              Mode host.\n"


# -- completion ------------------------------------------------------------------------------


@pytest.mark.parametrize(("shell", "file"), [("bash", "git-agent.bash"), ("zsh", "_git-agent"),
                                             ("fish", "git-agent.fish")])
def test_completion_scripts(user_actor: Actor, shell: str, file: str) -> None:
    p = user_actor.agent("completion", shell, cwd=user_actor.base)
    assert p.returncode == 0, p.stderr
    assert "_GIT_AGENT_COMPLETE" in p.stdout and "git-agent" in p.stdout
    shipped = REPO / "contrib" / "completions" / file
    assert p.stdout == shipped.read_text(), f"regenerate: git agent completion {shell} > {shipped}"
    if shutil.which(shell):
        check = subprocess.run([shell, "-n", str(shipped)], capture_output=True, text=True,
                               check=False)
        assert check.returncode == 0, check.stderr


def _bash_complete(actor: Actor, cwd: Path, *words: str) -> list[str]:
    script = (
        f". {GIT_BASH_COMPLETION}\n. {REPO / 'contrib' / 'completions' / 'git-agent.bash'}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}\n'
        '__git_wrap__git_main; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    p = actor.run(["bash", "-c", script, "bash", *words], cwd=cwd)
    assert p.returncode == 0, p.stderr
    return [w.strip() for w in p.stdout.splitlines() if w.strip()]


def test_git_agent_tab_completes_verbs_options_and_sessions(actor: Actor) -> None:
    if not GIT_BASH_COMPLETION.exists():
        pytest.skip("git's bash completion is not installed")
    repo = actor.make_repo()
    assert _bash_complete(actor, repo, "git", "agent", "r") == ["remote", "review", "run"]
    assert _bash_complete(actor, repo, "git", "agent", "run", "--net", "") == [
        "host", "none", "isolated", "filtered"]
    assert _bash_complete(actor, repo, "git", "-C", ".", "agent", "dr") == ["drop"]
    assert _bash_complete(actor, repo, "git", "agent", "drop", "") == []
    p = actor.agent("run", "-s", "fix-42", "--no-capture", "--", "true", cwd=repo)
    assert p.returncode == 0, p.stderr
    assert _bash_complete(actor, repo, "git", "agent", "drop", "fi") == ["fix-42"]
    assert _bash_complete(actor, repo, "git", "agent", "review", "") == ["fix-42"]
    assert _bash_complete(actor, repo, "git", "agent", "apply", "--", "f") == []  # paths there


def test_fish_completes_git_agent(user_actor: Actor) -> None:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed")
    script = REPO / "contrib" / "completions" / "git-agent.fish"
    p = user_actor.run(["fish", "-c", f"source {script}; complete -C 'git agent r'; "
                        "complete -C 'git-agent run --net '"], cwd=user_actor.base)
    words = [line.split("\t")[0] for line in p.stdout.splitlines()]
    assert words[:3] == ["remote", "review", "run"]
    assert sorted(words[3:]) == ["filtered", "host", "isolated", "none"]


# -- configuration ---------------------------------------------------------------------------


def config_rows(p: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str]]:
    assert p.returncode == 0, p.stderr
    rows = [tuple(line.split("\t")) for line in p.stdout.splitlines()]
    assert all(len(r) == 3 for r in rows), p.stdout
    return rows  # type: ignore[return-value]


def test_config_shows_every_key_and_where_it_came_from(actor: Actor) -> None:
    repo = actor.make_repo()
    actor.git("config", "--global", "agent.net", "none", cwd=repo)
    actor.git("config", "agent.net", "isolated", cwd=repo)
    actor.git("config", "--global", "--add", "agent.allowPort", "5432", cwd=repo)
    actor.git("config", "--add", "agent.allowPort", "6379", cwd=repo)
    actor.git("config", "--add", "agent.mount", "!.nvm", cwd=repo)
    actor.git("config", "--add", "agent.mount", "~/.cargo/:cow", cwd=repo)
    actor.git("config", "--add", "agent.mount", f"!{actor.home}/.rbenv", cwd=repo)
    actor.git("config", "--add", "agent.mount", "$HOME/.goenv:rw", cwd=repo)
    actor.git("config", "agent.preset.claude.passEnv", "MY_TOKEN", cwd=repo)
    rows = config_rows(actor.agent("config", cwd=repo))
    assert {r[0] for r in rows} >= {k.name for k in keys.KEYS}
    assert [r for r in rows if r[0] == "agent.net"] == [
        ("agent.net", "isolated", "local file:.git/config")]  # repo over global
    gl = f"global file:{actor.home}/.gitconfig"
    assert [r for r in rows if r[0] == "agent.allowPort"] == [
        ("agent.allowPort", "5432", gl), ("agent.allowPort", "6379", "local file:.git/config")]
    mounts = [r for r in rows if r[0] == "agent.mount"]
    assert mounts[0] == ("agent.mount", ".asdf", "default")
    # as it takes effect: !PATH removes the default, a later PATH:mode replaces it
    local = "local file:.git/config"
    assert mounts[-4:] == [("agent.mount", "!.nvm", local),
                           ("agent.mount", "~/.cargo/:cow", local),
                           ("agent.mount", f"!{actor.home}/.rbenv", local),
                           ("agent.mount", "$HOME/.goenv:rw", local)]
    assert not {".nvm", ".cargo", ".rbenv", ".goenv"} & {r[1] for r in mounts}
    assert ("agent.home", "~/aihome", "default") in rows
    assert ("agent.preset.claude.passEnv", "MY_TOKEN", "local file:.git/config") in rows
    data = json.loads(actor.agent("config", "--json", cwd=repo).stdout)
    assert {"key": "agent.net", "value": "isolated", "scope": "local",
            "origin": "file:.git/config"} in data


def test_config_warns_about_unknown_keys_on_stderr(user_actor: Actor) -> None:
    repo = user_actor.make_repo()
    user_actor.git("config", "agent.nett", "none", cwd=repo)
    user_actor.git("config", "--global", "agent.nett", "host", cwd=repo)
    p = user_actor.agent("config", cwd=repo)
    assert p.returncode == 0 and "agent.nett" not in p.stdout
    assert p.stderr.count("unknown setting agent.nett") == 1  # once, though set in two files
    assert "did you mean agent.net?" in p.stderr
    run = user_actor.agent("run", "--no-capture", "--", "true", cwd=repo)  # run says it too
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("git agent: warning: unknown setting agent.nett") == 1
    outside = user_actor.agent("config", cwd=user_actor.home)  # not a repository: global only
    assert outside.returncode == 0 and "agent.home\t~/aihome\tdefault" in outside.stdout


@pytest.fixture
def host_port() -> Iterator[int]:
    """A TCP listener on the host's loopback: reachable from a sandbox only with --net host."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


PROBE = ("import socket; s = socket.socket(); s.settimeout(5); "
         "print('connected' if s.connect_ex(('127.0.0.1', {port})) == 0 else 'unreachable')")


@pytest.mark.sandbox
def test_flag_over_repo_over_global_seen_from_inside(actor: Actor, host_port: int) -> None:
    repo = actor.make_repo()
    probe = ["--", "/usr/bin/python3", "-c", PROBE.format(port=host_port)]
    actor.git("config", "--global", "agent.net", "none", cwd=repo)
    global_only = actor.agent("run", "-s", "a", *probe, cwd=repo)
    actor.git("config", "agent.net", "host", cwd=repo)
    repo_wins = actor.agent("run", "-s", "b", *probe, cwd=repo)
    flag_wins = actor.agent("run", "-s", "c", "--net", "none", *probe, cwd=repo)
    assert global_only.stdout.strip() == "unreachable", global_only.stderr
    assert repo_wins.stdout.strip() == "connected", repo_wins.stderr
    assert flag_wins.stdout.strip() == "unreachable", flag_wins.stderr
    devs = actor.agent("run", "-s", "d", "--net", "none", "--", "cat", "/proc/net/dev", cwd=repo)
    assert [line.split(":")[0].strip() for line in devs.stdout.splitlines()[2:]] == ["lo"]


@pytest.mark.sandbox
def test_run_claude_gets_its_preset_environment(actor: Actor) -> None:
    repo = actor.make_repo()
    bin_dir = actor.home / ".local" / "bin"  # mounted read-only inside by default
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "claude"
    fake.write_text("#!/bin/sh\nenv\n")
    fake.chmod(0o755)
    actor.own(actor.home)
    env = {"PATH": f"{bin_dir}:{actor.env['PATH']}", "ANTHROPIC_API_KEY": "sk-ant-test",
           "OPENAI_API_KEY": "sk-oai", "GITHUB_TOKEN": "ghp", "AWS_SECRET_ACCESS_KEY": "aws"}

    def inside(*args: str) -> dict[str, str]:
        p = actor.agent("run", "-s", "env", *args, cwd=repo, env=env)
        assert p.returncode == 0, p.stderr
        return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)

    seen = inside("claude")
    assert seen["ANTHROPIC_API_KEY"] == "sk-ant-test" and seen["DISABLE_AUTOUPDATER"] == "1"
    assert not {"OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY"} & seen.keys()
    assert "ANTHROPIC_API_KEY" not in inside("--preset", "none", "claude")
    assert inside("--preset", "codex", "claude")["OPENAI_API_KEY"] == "sk-oai"
    actor.git("config", "agent.preset.claude.passEnv", "GITHUB_TOKEN", cwd=repo)
    assert inside("claude")["GITHUB_TOKEN"] == "ghp"


# -- errors and colour -----------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("frobnicate",), ("run", "--net", "bogus"), ("run", "--allow-port", "99999"), ("drop",),
    ("completion", "tcsh"), ("review", "--bogus"), ("run", "--preset", "nope", "--", "true"),
])
def test_usage_errors_exit_2_with_one_line(user_actor: Actor, args: tuple[str, ...]) -> None:
    repo = user_actor.make_repo()
    p = user_actor.agent(*args, cwd=repo)
    assert p.returncode == 2, (p.stdout, p.stderr)
    one_line_error(p)


def test_bad_preset_config_is_one_line(user_actor: Actor) -> None:
    repo = user_actor.make_repo()
    user_actor.git("config", "agent.preset.claude.setEnv", "NOVALUE", cwd=repo)
    p = user_actor.agent("run", "claude", cwd=repo)
    assert p.returncode == 2
    assert "agent.preset.claude.setEnv" in one_line_error(p)


def run_on_tty(actor: Actor, args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """stdout of `git agent ARGS` when it is a terminal."""
    master, slave = pty.openpty()
    full = {**actor.env, "TERM": "xterm", **env}
    argv = actor._with_env(["git", "agent", *args], {"TERM": "xterm", **env})
    p = subprocess.Popen(argv, cwd=cwd, env=full, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=30)
    os.close(master)
    return out.decode(errors="replace")


def test_colour_on_a_terminal_only_and_never_with_no_color(actor: Actor) -> None:
    repo = actor.make_repo()
    actor.git("config", "agent.net", "none", cwd=repo)
    tty = run_on_tty(actor, ["config"], repo, {})
    assert "\033[" in tty and "agent.net" in tty
    assert "\033[" not in run_on_tty(actor, ["config"], repo, {"NO_COLOR": "1"})
    actor.git("config", "color.ui", "never", cwd=repo)
    assert "\033[" not in run_on_tty(actor, ["config"], repo, {})
    actor.git("config", "color.ui", "always", cwd=repo)
    piped = actor.agent("config", cwd=repo)
    assert piped.returncode == 0 and "\033[" not in piped.stdout and "\t" in piped.stdout


def test_closed_standard_streams_are_dev_null(actor: Actor) -> None:
    """`>&-` or `<&-` from the caller: git agent and the agent get /dev/null there, as git
    does, instead of an internal error (or a file of ours taking fd 1)."""
    repo = actor.make_repo()
    p = actor.run(["sh", "-c", "git-agent list >&-; echo list=$? >&2; "
                   "git-agent review nosuch >&-; echo review=$? >&2; "
                   "git-agent run -s c -- sh -c 'echo out; echo agent=$? >&2; "
                   "echo fd1=$(readlink /proc/$$/fd/1) >&2; read x; echo read=$? >&2' >&- <&-"],
                  cwd=repo)
    assert "internal error" not in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert "list=0" in p.stderr and "review=1" in p.stderr and "no session" in p.stderr
    assert "agent=0" in p.stderr and "fd1=/dev/null" in p.stderr and "read=1" in p.stderr


def test_a_full_disk_is_one_line_not_an_internal_error(actor: Actor) -> None:
    """Output to a full device (here /dev/full) is the environment's fault: one line saying so,
    exit 1, and no second complaint when Python flushes at exit."""
    repo = actor.make_repo()
    actor.agent("run", "-s", "full", "--", "sh", "-c", "echo x > x.txt", cwd=repo)
    for verb in (["list"], ["list", "--json"], ["review", "full"], ["config"], ["doctor"]):
        p = actor.run(["sh", "-c", 'exec git-agent "$@" >/dev/full', "sh", *verb], cwd=repo)
        assert (p.returncode, p.stderr) == (1, "git agent: No space left on device\n"), verb
    # even the error line cannot be written: the exit code alone says it (not Python's 120)
    p = actor.run(["sh", "-c", "exec git-agent apply nosuch 2>/dev/full"], cwd=repo)
    assert (p.returncode, p.stdout) == (1, "")


def test_config_key_prints_one_value_like_git_config(actor: Actor) -> None:
    repo = actor.make_repo()
    actor.git("config", "agent.net", "none", cwd=repo)
    actor.git("config", "--add", "agent.allowPort", "5432", cwd=repo)
    actor.git("config", "--add", "agent.allowPort", "6379", cwd=repo)
    actor.git("config", "agent.preset.claude.passEnv", "MY_TOKEN", cwd=repo)
    for key in ("agent.net", "AGENT.NET"):  # as git: section and variable ignore case
        p = actor.agent("config", key, cwd=repo)
        assert (p.returncode, p.stdout, p.stderr) == (0, "none\n", "")
    assert actor.agent("config", "agent.allowPort", cwd=repo).stdout == "5432\n6379\n"
    assert actor.agent("config", "agent.home", cwd=repo).stdout == "~/aihome\n"  # a default
    assert actor.agent("config", "agent.preset.claude.passenv", cwd=repo).stdout == "MY_TOKEN\n"
    unset = actor.agent("config", "agent.authorName", cwd=repo)
    assert unset.returncode == 1 and unset.stdout == ""
    assert one_line_error(unset) == "git agent: agent.authorName is not set"
    typo = actor.agent("config", "agent.mounts", cwd=repo)
    assert typo.returncode == 2
    assert one_line_error(typo).endswith("unknown setting agent.mounts; did you mean agent.mount?")


def test_config_help_says_what_each_key_means_and_the_mount_modes(user_actor: Actor) -> None:
    out = user_actor.agent("config", "-h", cwd=user_actor.base).stdout
    for k in keys.KEYS:
        assert k.name in out and k.doc.split()[0] in out
    for mode in ("ro ", "cow ", "rw "):
        assert f"\n    {mode}" in out


def _readme_completion_line(shell: str) -> str:
    text = (REPO / "README.md").read_text().split("## Shell completion", 1)[1]
    return next(line for line in text.splitlines() if f"completion {shell} >" in line)


def test_bash_completion_works_after_the_readmes_one_line(actor: Actor) -> None:
    """Only the README's line, then bash as a user has it: bash-completion loads git's
    completion at `git <TAB>`, which loads ours for `git agent` (no second step)."""
    framework = Path("/usr/share/bash-completion/bash_completion")
    if not framework.exists() or not GIT_BASH_COMPLETION.exists():
        pytest.skip("bash-completion is not installed")
    repo = actor.make_repo()
    setup = actor.run(["bash", "-c", _readme_completion_line("bash")], cwd=repo)
    assert setup.returncode == 0, setup.stderr
    script = (
        f". {framework}\n"
        "_completion_loader git\n"  # what bash does at the first `git <TAB>`
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}\n'
        '__git_wrap__git_main; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    for words, expected in ((["git", "agent", "r"], ["remote", "review", "run"]),
                            (["git", "agent", "config", "--j"], ["--json"])):
        p = actor.run(["bash", "-c", script, "bash", *words], cwd=repo)
        assert p.returncode == 0, p.stderr
        assert [w.strip() for w in p.stdout.splitlines() if w.strip()] == expected
