"""`git agent remote add|list|remove` and the worker's protocol, without a network: URLs checked
in one line, git config as the store, one JSON request that never reaches a shell."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from pathlib import Path

import pytest

from git_agent.errors import GitAgentError, UsageError
from git_agent.remote import engine, podman, remotes, ssh
from git_agent.settings import gitconfig
from tests.conftest import Actor

GIT_AGENT = str(Path(sys.executable).parent / "git-agent")


@pytest.mark.parametrize("url,user,host,port", [
    ("ssh://gpu-box", None, "gpu-box", None),
    ("ssh://me@gpu-box", "me", "gpu-box", None),
    ("ssh://me@10.0.0.7:2222/", "me", "10.0.0.7", 2222),
    ("ssh://[::1]:22", None, "[::1]", 22),
])
def test_ssh_urls_are_parsed(url: str, user: str | None, host: str, port: int | None) -> None:
    t = remotes.parse_url(url)
    assert (t.engine, t.user, t.host, t.port) == ("ssh", user, host, port)


@pytest.mark.parametrize("url,needle", [
    ("gpu-box", "expected ssh://"),
    ("http://gpu-box", "unsupported remote URL scheme"),
    ("ssh://-oProxyCommand=touch${IFS}x", "bad host"),
    ("ssh://-oProxyUseFdpass", "bad host"),
    ("ssh://-lroot@box", "bad user"),
    ("ssh://box:0", "bad port"),
    ("ssh://box:99999", "bad port"),
    ("ssh://box/srv/repo", "no path"),
    ("ssh://a b", "bad host"),
    ("podman://-x", "bad podman URL"),
    ("podman://--url=ssh://evil", "bad podman URL"),
    ("podman://conn/extra", "bad podman URL"),
    ("podman://a b", "bad podman URL"),
])
def test_bad_urls_are_refused_in_one_line(url: str, needle: str) -> None:
    with pytest.raises(UsageError) as e:
        remotes.parse_url(url)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_the_ssh_command_forwards_nothing_and_takes_no_request() -> None:
    t = remotes.parse_url("ssh://me@box:2200")
    argv = ssh.ssh_argv(t, gitconfig.GitConfig())
    assert argv[:2] == ["ssh", "-T"]
    for opt in ("ForwardAgent=no", "ClearAllForwardings=yes"):
        assert argv[argv.index(opt) - 1] == "-o"
    assert argv[argv.index("-p") + 1] == "2200" and argv[argv.index("-l") + 1] == "me"
    assert argv[-4:] == ["--", "box", "git-agent", "worker"]


@pytest.mark.parametrize("url,connection", [("podman://", ""), ("podman://myconn", "myconn"),
                                            ("podman://my-conn_2/", "my-conn_2")])
def test_podman_urls_are_parsed(url: str, connection: str) -> None:
    t = remotes.parse_url(url)
    assert (t.engine, t.connection) == ("podman", connection)


def test_the_podman_commands_take_no_request_and_name_the_connection_as_one_word() -> None:
    cfg = gitconfig.GitConfig()
    pod = podman.Podman(remotes.parse_url("podman://myconn"), cfg, repo_id="a" * 40,
                        session="s/1")
    run = pod.run_argv()
    assert run[:4] == ["podman", "--connection=myconn", "run", "-d"]
    for opt in ("--userns=auto", "unmask=/proc/*", "--pull=never"):
        assert opt in run
    assert run[-4:] == ["--", podman.IMAGE, "sleep", "infinity"]
    pod.up = True  # as after open(): no container is made by a unit test
    pod.started = threading.Thread(target=lambda: None)
    pod.started.start()
    assert pod.worker() == ["podman", "--connection=myconn", "exec", "-i", "--", pod.container,
                            "git-agent", "worker"]
    tty = pod.worker(tty=True, ticket="0" * 32)
    assert tty[3:6] == ["-i", "-t", "--detach-keys="] and tty[-2:] == ["--ticket", "0" * 32]
    with pytest.raises(GitAgentError):
        pod.worker(ticket="--rm")
    # one container and one volume per session of a repository, podman's name rules kept
    other = podman.names("a" * 40, "s/2")
    assert (pod.container, pod.volume) != other and re.match(r"^[a-z0-9-]+$", pod.container)
    assert podman.Podman(remotes.parse_url("podman://"), cfg, repo_id=None,
                         session=None).run_argv()[:3] == ["podman", "run", "-d"]


def test_only_an_engine_whose_runs_outlive_the_connection_is_lasting() -> None:
    """--detach, attach and "it goes on" hold on ssh (a holder there); a Podman run ends with
    its container, so run --on --detach and attach refuse it before connecting."""
    cfg = gitconfig.GitConfig()
    box, pod = remotes.parse_url("ssh://me@box"), remotes.parse_url("podman://")
    assert engine.lasting(box) and engine.early(box)
    assert not engine.lasting(pod) and not engine.early(pod)
    s = engine.connect(box, cfg)
    assert s.lasting and not s.warm() and not s.discard()  # no login yet; drop: op drop
    p = engine.connect(pod, cfg, repo_id="a" * 40, session="s")
    assert not p.lasting and not p.warm()  # no container yet


def test_remotes_are_added_listed_and_removed(actor: Actor) -> None:
    repo = actor.make_repo("repo")

    def agent(*args: str) -> tuple[int, str, str]:
        p = actor.agent(*args, cwd=repo)
        assert "Traceback" not in p.stderr, p.stderr
        return p.returncode, p.stdout, p.stderr

    assert agent("remote", "add", "box", "ssh://me@gpu-box:2222")[0] == 0
    assert actor.git("config", "--local", "agent.remote.box.url", cwd=repo).strip() == \
        "ssh://me@gpu-box:2222"
    rc, out, _ = agent("remote", "list")
    assert rc == 0 and out == "box\tssh://me@gpu-box:2222\tlocal\n"
    assert agent("remote")[:2] == (0, out)  # alone, as `git remote`: the list
    rc, out, err = agent("config", "agent.remote.box.url")
    assert rc == 0 and out == "ssh://me@gpu-box:2222\n" and "unknown" not in err
    rc, _, err = agent("remote", "add", "box", "ssh://other")
    assert rc != 0 and err.count("\n") == 1 and "exists already" in err
    assert agent("remote", "add", "pod", "podman://myconn")[0] == 0
    assert agent("remote", "add", "here", "podman://")[0] == 0
    rc, _, err = agent("remote", "add", "pod2", "podman://-x")
    assert rc != 0 and err.count("\n") == 1 and "bad podman URL" in err
    assert agent("remote", "remove", "pod")[0] == 0 and agent("remote", "remove", "here")[0] == 0
    rc, _, err = agent("remote", "add", "x", "ssh://-oProxyCommand=id")
    assert rc != 0 and err.count("\n") == 1 and "bad host" in err
    rc, _, err = agent("remote", "doctor", "nobox")
    assert rc != 0 and err.count("\n") == 1 and "no remote 'nobox'" in err
    assert agent("remote", "remove", "box")[0] == 0
    assert agent("remote", "list")[1] == ""
    rc, _, err = agent("remote", "remove", "box")
    assert rc != 0 and err.count("\n") == 1 and "no remote" in err


def worker(actor: Actor, request: bytes) -> tuple[int, dict[str, object]]:
    p = actor.run([GIT_AGENT, "worker"], cwd=actor.base, input=request)
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout)


def test_the_worker_answers_doctor_in_json(actor: Actor) -> None:
    rc, answer = worker(actor, b'{"protocol": 1, "op": "doctor"}\n')
    assert rc == 0 and answer["ok"] is True and answer["protocol"] == 1
    checks = answer["checks"]
    assert isinstance(checks, list)
    assert {c["name"] for c in checks} >= {"bwrap", "user namespaces"}


def test_the_worker_never_runs_the_request(actor: Actor) -> None:
    mark = actor.base / "ran"
    for req in (b"$(touch %s)\n" % bytes(mark),
                b'{"protocol": 1, "op": "doctor; touch %s"}\n' % bytes(mark),
                b'{"protocol": 1, "op": "$(touch %s)"}\n' % bytes(mark)):
        rc, answer = worker(actor, req)
        assert rc == 1 and "error" in answer
    assert not mark.exists()
    rc, answer = worker(actor, b'{"protocol": 99, "op": "doctor"}\n')
    assert rc == 1 and "protocol" in str(answer["error"])


def test_the_worker_reads_one_request_of_bounded_size() -> None:
    from git_agent.remote import worker

    seen: list[dict[str, object]] = []

    def op(req: dict[str, object]) -> dict[str, object]:
        seen.append(req)
        return {"ok": True}

    ops = {"doctor": op}
    two = b'{"protocol": 1, "op": "doctor"}\n{"protocol": 1, "op": "doctor", "x": 1}\n'
    assert worker.answer(two, ops)["ok"] is True and seen == [{"protocol": 1, "op": "doctor"}]
    big = b'{"protocol": 1, "op": "doctor", "pad": "' + b"x" * worker.MAX_REQUEST + b'"}\n'
    assert "over" in str(worker.answer(big, ops)["error"]) and len(seen) == 1
    assert "not a JSON object" in str(worker.answer(b"[1]\n", ops)["error"])


def test_the_remote_keys_are_known_and_typos_get_a_hint() -> None:
    from git_agent.settings import keys

    assert keys.is_known("agent.remote.box.url") and keys.is_known("agent.sshconfig")
    assert not keys.is_known("agent.remote.box.urll") and not keys.is_known("agent.remote.url")
    assert keys.nearest("agent.remote.box.urll") == "agent.remote.box.url"


def test_podman_makes_one_container_at_a_time(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """--attempts makes N containers at once; podman 4.3 was seen to hang for good on two
    `podman run --userns=auto` at once (a CI run here): git agent makes them one at a time.
    A fake podman records when each `run` starts and ends; the two never overlap."""
    log = tmp_path / "log"
    fake = tmp_path / "bin" / "podman"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nif [ "$1" = run ]; then echo start >> {log}; sleep 0.3; '
                    f'echo end >> {log}; fi\nexit 0\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    cfg = gitconfig.GitConfig()
    pods = [podman.Podman(remotes.parse_url("podman://"), cfg, repo_id="a" * 40,
                          session=f"s.{i}") for i in (1, 2)]
    for pod in pods:
        pod.open(shared=False)
    for pod in pods:
        pod.ready()
    assert log.read_text().split() == ["start", "end", "start", "end"]
