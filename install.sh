#!/bin/sh
# Install git-agent for you alone, with nothing but python3 (>= 3.11) and git: no pipx, uv, pip
# or python3-venv needed, no root. From a clone of this repository:
#
#   ./install.sh
#
# It makes a virtual environment in ~/.local/share/git-agent/venv (XDG_DATA_HOME is honoured),
# installs this clone and its dependencies into it from PyPI, and links ~/.local/bin/git-agent
# (git then finds `git agent`), the manual page (`git agent --help`) and bash completion.
# Run it again to update; `./install.sh --uninstall` removes all of it. With pipx or uv at hand,
# `pipx install .` or `uv tool install .` do the same job. PYTHON=/path/to/python3 picks another.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
py=${PYTHON:-python3}
data=${XDG_DATA_HOME:-$HOME/.local/share}
venv=$data/git-agent/venv
bindir=$HOME/.local/bin
man1=$data/man/man1
bashcomp=$data/bash-completion/completions

say() { printf 'install.sh: %s\n' "$*" >&2; }

if [ "${1-}" = --uninstall ]; then
    rm -rf "$data/git-agent"
    rm -f "$bindir/git-agent" "$man1/git-agent.1" "$bashcomp/git-agent"
    say "removed git-agent (sessions and the agent home are kept: ~/.local/state/git-agent, ~/aihome)"
    exit 0
fi

if ! command -v "$py" >/dev/null 2>&1; then
    say "$py not found; install Python 3.11 or newer (Debian/Ubuntu: apt install python3)"
    exit 1
fi
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "git-agent needs Python >= 3.11; $py is $("$py" -V 2>&1) (PYTHON=/path/to/python3.11 $0)"
    exit 1
fi
command -v git >/dev/null 2>&1 || say "warning: git not found on PATH; git agent needs it"

rm -rf "$venv"
mkdir -p "$(dirname -- "$venv")"
if "$py" -m venv "$venv" >/dev/null 2>&1; then
    pip="$venv/bin/python -m pip"
else
    # Debian and Ubuntu keep venv's pip (ensurepip) in the python3-venv package, which minimal
    # images lack: make the environment without pip and bring pip in another way.
    rm -rf "$venv"
    "$py" -m venv --without-pip "$venv"
    if "$py" -m pip --version >/dev/null 2>&1; then
        # the system's pip (python3-pip) installs into the environment from outside
        pip="$py -m pip --python $venv/bin/python"
    else
        say "no ensurepip (python3-venv) nor pip here: fetching pip's wheel from PyPI"
        wheel_dir=$(mktemp -d)
        "$venv/bin/python" - "$wheel_dir" <<'PY'
import hashlib, json, os, sys, urllib.parse, urllib.request
api = "https://pypi.org/pypi/pip/json"
with urllib.request.urlopen(api, timeout=60) as r:
    release = json.load(r)
[wheel] = [u for u in release["urls"] if u["packagetype"] == "bdist_wheel"][:1]
url = urllib.parse.urljoin(api, wheel["url"])
with urllib.request.urlopen(url, timeout=120) as r:
    data = r.read()
if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
    sys.exit("install.sh: pip's wheel does not match PyPI's sha256; not installed")
with open(os.path.join(sys.argv[1], wheel["filename"]), "wb") as f:
    f.write(data)
PY
        whl=$(ls "$wheel_dir"/pip-*.whl)
        # a wheel is a zip Python can run: pip installs itself from its own wheel
        "$venv/bin/python" "$whl/pip" install --quiet --no-index "$whl"
        rm -rf "$wheel_dir"
        pip="$venv/bin/python -m pip"
    fi
fi
say "installing into $venv (dependencies come from PyPI)"
$pip install --quiet --disable-pip-version-check "$here"

mkdir -p "$bindir" "$man1" "$bashcomp"
ln -sf "$venv/bin/git-agent" "$bindir/git-agent"
if [ -f "$venv/share/man/man1/git-agent.1" ]; then
    ln -sf "$venv/share/man/man1/git-agent.1" "$man1/git-agent.1"
fi
# bash-completion loads it for `git-agent`, and git's own completion for `git agent`
"$venv/bin/git-agent" completion bash > "$bashcomp/git-agent"

say "installed: $("$bindir/git-agent" --version)"
case ":$PATH:" in
    *":$bindir:"*) ;;
    *) say "$bindir is not on your PATH: add it (then git finds \`git agent\`), e.g."
       say "  echo 'export PATH=\"\$HOME/.local/bin:\$PATH\"' >> ~/.profile && . ~/.profile" ;;
esac
say "next: \`git agent doctor\`, then in your project: git agent run claude"
