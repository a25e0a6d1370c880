"""The mount plan as data: argv building and the rules of sandbox.build_plan, without bwrap."""

from __future__ import annotations

from pathlib import Path

import pytest

from git_agent.errors import SandboxUnavailable, UsageError
from git_agent.repo import Worktree
from git_agent.sandbox import build as sandbox
from git_agent.sandbox import system
from git_agent.sandbox.mounts import Bind, MountPlan, Overlay, Symlink, Tmpfs
from git_agent.session import Session


def test_argv_order_and_namespaces() -> None:
    plan = MountPlan(
        mounts=[Bind(Path("/usr"), Path("/usr")), Symlink("usr/bin", Path("/bin")),
                Overlay((Path("/w"),), Path("/s/u"), Path("/s/w"), Path("/w"))],
        env={"B": "2", "A": "1"},
        chdir=Path("/w/sub"),
        command=["claude", "--flag"],
    )
    argv = plan.argv("/x/bwrap")
    assert argv[0] == "/x/bwrap"
    for opt in ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--die-with-parent", "--disable-userns", "--clearenv"):
        assert opt in argv
    assert "--unshare-net" not in argv  # host network by default
    i = argv.index("--ro-bind")
    assert argv[i : i + 3] == ["--ro-bind", "/usr", "/usr"]
    j = argv.index("--overlay-src")
    assert argv[j : j + 6] == ["--overlay-src", "/w", "--overlay", "/s/u", "/s/w", "/w"]
    assert argv.index("--setenv") > argv.index("--clearenv")
    assert argv[argv.index("--setenv") : argv.index("--setenv") + 6] == [
        "--setenv", "A", "1", "--setenv", "B", "2"]
    assert argv[argv.index("--chdir") + 1] == "/w/sub"
    assert argv[argv.index("--") + 1 :] == ["claude", "--flag"]
    assert "--cap-drop" in argv and argv[argv.index("--cap-drop") + 1] == "ALL"


def test_net_none_unshares_the_network() -> None:
    assert "--unshare-net" in MountPlan(share_net=False).argv("bwrap")


def test_tmpfs_perms_come_before_it() -> None:
    assert Tmpfs(Path("/x"), mode=0o755).to_args() == ["--perms", "755", "--tmpfs", "/x"]


def _opts(tmp_path: Path, **kw: object) -> sandbox.Options:
    home = tmp_path / "home"
    wt_root = tmp_path / "work" / "repo"
    (wt_root / ".git").mkdir(parents=True)
    home.mkdir(exist_ok=True)
    ah = tmp_path / "aihome"
    ah.mkdir(exist_ok=True)
    state = tmp_path / "state"
    s = Session(name="x", dir=state / "sessions" / "x")
    s.upper.mkdir(parents=True)
    s.work.mkdir(parents=True)
    wt = Worktree(root=wt_root, git_dir=wt_root / ".git", common_dir=wt_root / ".git", cwd=wt_root)
    base: dict[str, object] = dict(worktree=wt, session=s, home=home, agent_home=ah,
                                   state_root=state, command=["sh"], protect=[".bashrc", ".ssh/"])
    base.update(kw)
    return sandbox.Options(**base)  # type: ignore[arg-type]


def test_plan_mounts_worktree_overlay_and_agent_home(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    plan = sandbox.build_plan(opts)
    binds = [m for m in plan.mounts if isinstance(m, Bind)]
    # the shared agent home is the read-only lower layer; the session's writes land in its dir
    home = Overlay((opts.agent_home,), opts.session.dir / "home-upper",
                   opts.session.dir / "home-work", opts.home)
    assert home in plan.mounts
    assert not any(b.src == opts.agent_home for b in binds)  # never bound writable
    assert Overlay((opts.worktree.root,), opts.session.upper, opts.session.work,
                   opts.worktree.root) in plan.mounts
    # agent.protect: created in the shared agent home and mounted read-only over it
    assert Bind(opts.agent_home / ".bashrc", opts.home / ".bashrc") in binds
    assert (opts.agent_home / ".ssh").is_dir()
    assert plan.chdir == opts.worktree.root
    # the order matters: home first, then the worktree overlay (which may be inside home)
    idx_home = plan.mounts.index(home)
    idx_wt = plan.mounts.index(Overlay((opts.worktree.root,), opts.session.upper,
                                       opts.session.work, opts.worktree.root))
    assert idx_home < idx_wt


def test_symlink_in_the_session_home_on_the_way_to_a_mount_point_is_refused(
        tmp_path: Path) -> None:
    opts = _opts(tmp_path, protect=[".config/git/"])
    up = opts.session.dir / "home-upper"
    up.mkdir(parents=True)
    (up / ".config").symlink_to("/etc")
    with pytest.raises(SandboxUnavailable, match="symlink"):
        sandbox.build_plan(opts)


def test_linked_worktree_gets_an_overlay_of_the_common_dir(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    common = tmp_path / "main" / ".git"
    common.mkdir(parents=True)
    wt = opts.worktree
    opts.worktree = Worktree(root=wt.root, git_dir=common / "worktrees" / "r", common_dir=common,
                             cwd=wt.root)
    plan = sandbox.build_plan(opts)
    assert Overlay((common,), opts.session.git_upper, opts.session.git_work, common) in plan.mounts


def test_store_inside_a_mounted_dir_is_refused(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    tool = tmp_path / "home" / ".local"
    (tool / "state").mkdir(parents=True)
    opts.state_root = tool / "state" / "git-agent"
    opts.home_mounts = [sandbox.HomeMount(tool, "ro")]
    with pytest.raises(UsageError, match="session store"):
        sandbox.build_plan(opts)


def test_store_inside_agent_home_is_refused(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    opts.state_root = opts.agent_home / ".local" / "state" / "git-agent"
    with pytest.raises((SandboxUnavailable, UsageError), match="session store"):
        sandbox.build_plan(opts)


def test_agent_home_must_not_be_the_real_home(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    opts.agent_home = opts.home
    with pytest.raises(UsageError, match="real home"):
        sandbox.build_plan(opts)


def test_symlink_in_agent_home_on_the_way_to_a_mount_point_is_refused(tmp_path: Path) -> None:
    opts = _opts(tmp_path, protect=[".config/git/"])
    (opts.agent_home / ".config").symlink_to("/etc")
    with pytest.raises(SandboxUnavailable, match="symlink"):
        sandbox.build_plan(opts)


def test_home_mount_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path
    monkeypatch.setenv("HOME", str(home))
    for d in (".cargo", ".nvm", ".asdf"):
        (home / d).mkdir()
    mounts, warnings = sandbox.parse_home_mounts(
        [".cargo", ".nvm", ".asdf", ".missing", ".nvm:cow", "!.asdf", ".explicit-missing:rw"],
        home=home, explicit={".explicit-missing:rw"},
    )
    assert [(m.path.name, m.mode) for m in mounts] == [(".cargo", "ro"), (".nvm", "cow")]
    assert warnings == [f"mount {home / '.explicit-missing'}: does not exist, skipped"]
    # spelled otherwise: a trailing slash, ~ or $HOME, a detour through ..
    mounts, warnings = sandbox.parse_home_mounts(
        [".cargo", ".nvm", ".asdf", "!~/.cargo/", "$HOME/.nvm:rw", "!.nvm/../.asdf",
         "~/.gone/:cow"], home=home, explicit={"~/.gone/:cow"})
    assert [(m.path.name, m.mode) for m in mounts] == [(".nvm", "rw")]
    assert warnings == [f"mount {home / '.gone'}: does not exist, skipped"]


@pytest.mark.parametrize("spec", [".cargo:cwo", ".cargo:RW", "x:", ":ro", "!"])
def test_a_bad_mount_spec_is_refused(tmp_path: Path, spec: str) -> None:
    with pytest.raises(UsageError, match="agent.mount"):
        sandbox.parse_home_mounts([spec], home=tmp_path, explicit={spec})


def test_a_path_holding_a_colon_takes_a_mode(tmp_path: Path) -> None:
    (tmp_path / "a:b").mkdir()
    (tmp_path / "rw").mkdir()
    mounts, warnings = sandbox.parse_home_mounts(
        ["a:b:ro", "rw", ".cargo:cow:rw"], home=tmp_path, explicit={".cargo:cow:rw"})
    assert [(m.path.name, m.mode) for m in mounts] == [("a:b", "ro"), ("rw", "ro")]
    assert warnings == [f"mount {tmp_path / '.cargo:cow'}: does not exist, skipped"]


def test_environment_allow_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("WANTED", "y")
    env = sandbox.environment(home=tmp_path, session="s", pass_env=["WANTED"], set_env={})
    assert "AWS_SECRET_ACCESS_KEY" not in env and "DISPLAY" not in env
    assert env["LC_ALL"] == "C" and env["WANTED"] == "y"
    assert env["HOME"] == str(tmp_path) and env["GIT_AGENT_SESSION"] == "s"


def test_root_runs_mask_etc_entries_others_cannot_read(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "ssl" / "private").mkdir(parents=True)
    (etc / "ssl" / "private").chmod(0o700)
    (etc / "ssl" / "certs").mkdir()
    (etc / "ssl" / "certs" / "ca.pem").write_text("public")
    (etc / "wireguard.conf").write_text("PrivateKey=x")
    (etc / "wireguard.conf").chmod(0o600)
    (etc / "hosts").write_text("127.0.0.1 localhost")
    (etc / "hosts").chmod(0o644)
    empty = tmp_path / "empty"
    ms = system._root_only_etc(empty, etc)
    assert Bind(empty, etc / "wireguard.conf") in ms
    assert Tmpfs(etc / "ssl" / "private", mode=0o700) in ms
    masked = {getattr(m, "dest", None) for m in ms}
    assert etc / "hosts" not in masked and etc / "ssl" / "certs" / "ca.pem" not in masked


def test_a_lock_file_in_etc_is_not_masked_it_may_be_gone_by_the_launch(tmp_path: Path) -> None:
    """useradd's /etc/shadow.lock (0600, a pid, no secret) lives for a moment: masked, it made
    bwrap fail when it was gone by the launch ("Can't create file at /etc/shadow.lock")."""
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("shadow.lock", "shadow+"):
        (etc / name).write_text("1234")
        (etc / name).chmod(0o600)
    empty = tmp_path / "empty"
    masked = {getattr(m, "dest", None) for m in system._root_only_etc(empty, etc)}
    assert etc / "shadow.lock" not in masked
    assert etc / "shadow+" in masked  # a transient copy of a secret is still one


def test_registry_tokens_in_toolchain_mounts_are_masked(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    cargo = opts.home / ".cargo"
    (cargo / "bin").mkdir(parents=True)
    (cargo / "credentials.toml").write_text("token = 'secret'")
    opts.home_mounts = [sandbox.HomeMount(cargo, "ro")]
    opts.empty_file = tmp_path / "empty"
    opts.empty_file.write_text("")
    plan = sandbox.build_plan(opts)
    assert Bind(cargo, cargo) in plan.mounts
    assert Bind(opts.empty_file, cargo / "credentials.toml") in plan.mounts
    # the mask comes after the dir it masks
    mask = Bind(opts.empty_file, cargo / "credentials.toml")
    assert plan.mounts.index(mask) > plan.mounts.index(Bind(cargo, cargo))


def test_the_find_scan_of_etc_agrees_with_the_walk(tmp_path: Path) -> None:
    import shutil

    if shutil.which("find") is None:
        pytest.skip("no find")
    empty = tmp_path / "empty"
    system.start_root_etc_scan()
    found = system.root_only_etc(empty)
    assert sorted(map(repr, found)) == sorted(map(repr, system._root_only_etc(empty)))


def test_a_changed_plan_is_a_copy() -> None:
    plan = MountPlan(command=["sh"], extra=["--x"])
    other = plan.but(command=["env", "sh"])
    assert other.command == ["env", "sh"] and other.extra == ["--x"]
    assert plan == MountPlan(command=["sh"], extra=["--x"])  # unchanged


def test_the_command_line_holds_no_option_and_no_environment() -> None:
    """bwrap gets its options on an fd (--args): /proc/PID/cmdline inside shows no value of
    the environment (the promise: the environment is an allow-list)."""
    import os

    from git_agent.sandbox import launch

    plan = MountPlan(mounts=[Bind(Path("/usr"), Path("/usr"))], env={"TOKEN": "s3cr3t"},
                     command=["claude", "-p"])
    argv, fd = launch.command_line(plan, Path("/x/bwrap"))
    try:
        data = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    assert argv == ["/x/bwrap", "--args", str(fd), "--", "claude", "-p"]
    assert data.split(b"\0")[:-1] == [os.fsencode(a) for a in plan.options()]
    assert b"s3cr3t" in data and not any("s3cr3t" in a for a in argv)


def test_launch_leaves_the_callers_plan_alone(tmp_path: Path) -> None:
    """launch.run adds its fds and the signal prefix to a copy (a bwrap that fails at once)."""
    from git_agent.sandbox import launch

    plan = MountPlan(command=["sh"], env={"A": "1"})
    before = repr(plan)
    out = launch.run(plan, bwrap=Path("/bin/false"), hooks=launch.Hooks(seccomp=b"\0" * 8))
    assert out.started is False
    assert repr(plan) == before


def test_probes_are_small_plans() -> None:
    from git_agent.sandbox import probes
    from git_agent.sandbox.mounts import Proc

    argv = probes._system(Proc()).argv("bwrap")
    assert argv[argv.index("--ro-bind"):][:3] == ["--ro-bind", "/", "/"]
    assert "--proc" in argv and "--disable-userns" not in argv
    assert argv[-2:] == ["--", "true"]
    assert "--disable-userns" in probes._system(disable_userns=True).argv("bwrap")


def test_the_kernels_settings_are_bound_read_only_over_the_new_procfs(tmp_path: Path) -> None:
    from git_agent.sandbox.mounts import Proc

    empty = tmp_path / "empty"
    ms = system.proc_mounts(empty)
    assert ms[0] == Proc()  # the covers come after the procfs they cover
    assert Bind(Path("/proc/sys"), Path("/proc/sys")) in ms  # ro by default
    for p in system.PROC_MASKED:
        if Path(p).is_file():
            assert Bind(empty, Path(p)) in ms
    argv = MountPlan(mounts=system.system_mounts(empty)).options()
    assert argv.index("--proc") < argv.index("/proc/sys")


def test_a_proc_sys_the_host_hides_is_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    from git_agent.sandbox.mounts import RemountRo

    real = system.os.path.lexists
    monkeypatch.setattr(system.os.path, "lexists", lambda p: p != "/proc/sys" and real(p))
    ms = system.proc_mounts(tmp_path / "empty")
    assert Tmpfs(Path("/proc/sys"), mode=0o555) in ms and RemountRo(Path("/proc/sys")) in ms
