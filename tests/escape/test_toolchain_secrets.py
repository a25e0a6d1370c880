"""Credentials in the real-home toolchain dirs mounted into the sandbox, through the real CLI, as
root and as an unprivileged user (docs/security.md, "Your home": the tokens that live inside
mounted toolchain dirs are masked, at any depth). Each token is put where its tool keeps it."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Actor

# where each tool keeps its registry, cloud or signing credentials, relative to the real home
TOKENS = {
    ".m2/settings.xml": "<settings><servers><server><password>M2SECRET</password></server>"
                        "</servers></settings>\n",
    ".m2/settings-security.xml": "<settingsSecurity><master>M2MASTERSECRET</master>"
                                 "</settingsSecurity>\n",
    ".gradle/gradle.properties": "signing.password=GRADLESECRET\n",
    ".cargo/config.toml": '[registry]\ntoken = "CARGOCONFIGSECRET"\n',
    ".cargo/credentials.toml": '[registry]\ntoken = "CARGOCREDSECRET"\n',
    ".docker/config.json": '{"auths":{"ghcr.io":{"auth":"DOCKERSECRET"}}}\n',
    ".config/pip/pip.conf": "[global]\nindex-url=https://u:PIPSECRET@pypi.corp/simple\n",
    ".terraform.d/credentials.tfrc.json": '{"credentials":{"app.terraform.io":'
                                          '{"token":"TFSECRET"}}}\n',
    ".nuget/NuGet/NuGet.Config": '<add key="ClearTextPassword" value="NUGETSECRET"/>\n',
    ".kube/config": "users:\n- user:\n    token: KUBESECRET\n",
    ".ivy2/.credentials": "password=IVYSECRET\n",
    ".sbt/.credentials": "password=SBTSECRET\n",
    # a name at any depth below a mounted dir: a global npm prefix's config under a node version
    ".nvm/versions/node/v20.0.0/etc/npmrc": "//registry.npmjs.org/:_authToken=NPMSECRET\n",
    ".cargo/registry/deep/er/still/.netrc": "machine x login u password NETRCSECRET\n",
}
MOUNTS = (".m2", ".gradle", ".cargo", ".docker", ".config/pip", ".terraform.d", ".nuget",
          ".kube", ".ivy2", ".sbt", ".nvm")


def test_registry_tokens_in_mounted_toolchain_dirs_are_masked(actor: Actor) -> None:
    repo = actor.make_repo()
    for rel, text in TOKENS.items():
        p = actor.home / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    # the toolchains themselves stay usable
    (actor.home / ".cargo" / "bin").mkdir()
    (actor.home / ".cargo" / "bin" / "cargo-x").write_text("#!/bin/sh\necho tool\n")
    (actor.home / ".m2" / "repository").mkdir()
    (actor.home / ".m2" / "repository" / "lib.pom").write_text("<project/>\n")
    # a link named like a token, to a token file under another name in a mounted dir
    (actor.home / ".docker" / "stash.json").write_text('{"auth":"LINKEDSECRET"}\n')
    os.symlink("stash.json", actor.home / ".docker" / ".dockercfg")
    actor.own(actor.home)
    args = [a for m in MOUNTS for a in ("--mount", m)]
    script = ("grep -rhoa '[A-Z0-9]*SECRET' ~ 2>/dev/null | sort -u; echo; "
              "for f in " + " ".join(f"~/{r}" for r in TOKENS) + " ~/.docker/.dockercfg; do "
              "test -f $f && printf '%s:%s\\n' $f $(wc -c < $f); done; "
              "cat ~/.cargo/bin/cargo-x ~/.m2/repository/lib.pom; "
              "(echo x > ~/.m2/settings.xml) 2>/dev/null && echo WROTE; true")
    p = actor.agent("run", "-s", "tok", "--no-capture", "--net", "none", *args, "--",
                    "sh", "-c", script, cwd=repo)
    assert p.returncode == 0, p.stderr
    assert "SECRET" not in p.stdout, p.stdout
    home = str(actor.home)
    for rel in [*TOKENS, ".docker/.dockercfg"]:  # there, empty (not removed: tools still start)
        assert f"{home}/{rel}:0\n" in p.stdout, (rel, p.stdout)
    assert "echo tool" in p.stdout and "<project/>" in p.stdout  # not masked
    assert "WROTE" not in p.stdout  # a read-only empty file
    # the real files are untouched
    assert Path(actor.home / ".m2/settings.xml").read_text() == TOKENS[".m2/settings.xml"]
