"""Each preset with the real client: installed as its docs say, run by `git agent run` against
a scripted LLM on loopback; the model writes a file and runs a shell command, and both must
arrive on agent/<session>. The run is in --net filtered with only the LLM's port allowed and
no name resolvable: the session's network record must show nothing else (a telemetry, update
or plugin request would be a denied line). As root and as the unprivileged user.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.agents import clients
from tests.agents.llm import Script, Server
from tests.conftest import Actor

pytestmark = pytest.mark.agents

PROMPT = "Create hello.txt, then run the command."
KEY = "sk-test-0000000000000000000000000000"


# What a client tries whatever its switches say (denied in --net filtered, and recorded):
# opencode installs @opencode-ai/plugin from npm into each config dir at every start; aider
# fetches litellm's model list from GitHub unless ~/.aider/caches has one under a day old.
TRIES = {"opencode": ("registry.npmjs.org",), "aider": ("raw.githubusercontent.com",)}


@dataclass
class Case:
    argv: list[str]
    env: dict[str, str]


def case(name: str, url: str) -> Case:
    """How the docs say to run each client non-interactively against its own endpoint."""
    if name == "claude":
        return Case(["claude", "-p", PROMPT, "--dangerously-skip-permissions"],
                    {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": KEY})
    if name == "codex":
        # codex reads no base-URL variable: its config key openai_base_url, given with -c
        return Case(["codex", "exec", "-m", "gpt-4.1", "-c", f'openai_base_url="{url}/v1"',
                     PROMPT], {"CODEX_API_KEY": KEY})
    if name == "gemini":
        # --skip-trust: a folder is untrusted until the user says so (kept in the agent home)
        return Case(["gemini", "-p", PROMPT, "--yolo", "--skip-trust"],
                    {"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": KEY})
    if name == "opencode":
        cfg = {"provider": {"openai": {"options": {"baseURL": f"{url}/v1", "apiKey": KEY}}}}
        return Case(["opencode", "run", "--model", "openai/gpt-4.1", PROMPT],
                    {"OPENCODE_CONFIG_CONTENT": json.dumps(cfg), "OPENAI_API_KEY": KEY})
    if name == "qwen":
        return Case(["qwen", "-p", PROMPT, "--yolo"],
                    {"OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": KEY,
                     "OPENAI_MODEL": "gpt-4o"})
    if name == "aider":
        return Case(["aider", "--model", "openai/gpt-4o", "--edit-format", "whole",
                     "--yes-always", "--message", PROMPT],
                    {"OPENAI_API_BASE": f"{url}/v1", "OPENAI_API_KEY": KEY})
    raise AssertionError(name)


@pytest.fixture
def llm(actor: Actor) -> Iterator[Server]:
    server = Server(Script(path="", content="", command="")).start()
    yield server
    server.stop()


def own_settings(name: str, actor: Actor) -> None:
    """What a user of the client has in its home after the documented first-run setup."""
    if name == "gemini":
        # the auth type its dialog saves when one picks "Gemini API key"; without it, 0.61.0
        # calls a GOOGLE_GEMINI_BASE_URL run "gateway" auth and refuses it without a terminal
        # ("Invalid auth method selected.")
        path = actor.home / "aihome" / ".gemini" / "settings.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        # and its usage statistics (to play.googleapis.com) off: a setting, no variable turns
        # them off, so the preset cannot (docs/configuration.md says so)
        path.write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}},
                                    "privacy": {"usageStatisticsEnabled": False}}))
        actor.own(actor.home / "aihome")


def net_record(actor: Actor) -> list[dict[str, object]]:
    """The session's network journal: one line per connection the proxy saw."""
    found = list((actor.home / ".local" / "state" / "git-agent").rglob("net.jsonl"))
    assert len(found) == 1, found
    return [json.loads(line) for line in found[0].read_text().splitlines()]


def run_client(name: str, actor: Actor, llm: Server) -> tuple[Path, str]:
    """Run the client in a fresh repo through git agent, its network filtered down to the
    scripted LLM's port; return the repo and its output."""
    bin_path = clients.path_for(name)
    repo = actor.make_repo()
    own_settings(name, actor)
    content = f"hello from {name}\n"
    llm.script = Script(path=str(repo / "hello.txt"), content=content,
                        command="echo ok > ran.txt",
                        edit=f"hello.txt\n```\n{content}```\n")
    c = case(name, llm.url)
    # names resolve only from this (empty) file: a connection to any host, the preset's API
    # hosts included, is refused by the proxy and recorded, and never leaves the machine
    hosts = actor.base / "hosts"
    hosts.write_text("")
    actor.own(hosts)
    start = time.monotonic()
    p = actor.agent("run", "-s", "t", "--net", "filtered", "--allow-port", str(llm.port), "--",
                    *c.argv, cwd=repo, timeout=600,
                    env={"PATH": f"{bin_path}:{actor.env['PATH']}", "GIT_AGENT_NET_HOSTS":
                         str(hosts), **c.env})
    took = time.monotonic() - start
    out = f"exit {p.returncode} in {took:.0f}s\n{p.stdout}\n{p.stderr}\nrequests:\n{llm.log()}"
    print(f"{name} as {actor.name}: {took:.1f}s")
    assert p.returncode == 0, out
    record = net_record(actor)
    # the scripted LLM was reached through the allowed port, and nothing else was tried:
    # no telemetry, update check, plugin or model-list download (each would be a denied line)
    assert any(e["via"] == "port" and e["port"] == llm.port and int(str(e["received"])) > 0
               for e in record), f"{record}\n{out}"
    others = [e for e in record if (e["via"], e["port"]) != ("port", llm.port)
              and not (e["verdict"] == "denied" and e["host"] in TRIES.get(name, ()))]
    assert others == [], f"{name} tried other connections: {others}\n{out}"
    return repo, out


def show(actor: Actor, repo: Path, path: str) -> str:
    p = actor.run(["git", "show", f"agent/t:{path}"], cwd=repo)
    return p.stdout if p.returncode == 0 else f"<missing: {p.stderr.strip()}>"


def check_wrote_and_ran(name: str, actor: Actor, llm: Server) -> Path:
    repo, out = run_client(name, actor, llm)
    assert show(actor, repo, "hello.txt") == f"hello from {name}\n", out
    assert show(actor, repo, "ran.txt") == "ok\n", out
    return repo


@pytest.mark.parametrize("name", ["claude", "codex", "gemini", "opencode", "qwen"])
def test_client_writes_a_file_and_runs_a_command(name: str, actor: Actor, llm: Server) -> None:
    check_wrote_and_ran(name, actor, llm)


def test_aider_writes_a_file_and_commits_it_itself(actor: Actor, llm: Server) -> None:
    repo, out = run_client("aider", actor, llm)
    assert show(actor, repo, "hello.txt") == "hello from aider\n", out
    # aider's own commit (its message from the model) is on the branch, with the file
    log = actor.git("log", "--format=%s", "main..agent/t", "--", "hello.txt", cwd=repo)
    assert "Add the file" in log.splitlines(), f"{log}\n{out}"
