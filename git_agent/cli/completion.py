"""Shell completion: click's script for `git-agent`, plus the glue for `git agent <TAB>`."""

from __future__ import annotations

SHELLS = ("bash", "zsh", "fish")
PROG = "git-agent"
COMPLETE_VAR = "_GIT_AGENT_COMPLETE"

# git's bash completion calls _git_<subcommand> when it is defined; its `words`/`cword` hold the
# whole git command line, so hand click the words after "agent" (skipping `git -C dir` etc.).
_BASH_GIT = r"""
# `git agent <TAB>`: git's completion calls _git_agent (load git's completion first)
_git_agent() {
    local i start=-1 IFS=$'\n' response line list=""
    for ((i = 1; i < cword; i++)); do
        if [[ ${words[i]} == agent ]]; then start=$i; break; fi
    done
    ((start < 0)) && return 0
    response=$(env COMP_WORDS="git-agent ${words[*]:start+1}" COMP_CWORD=$((cword - start)) \
        _GIT_AGENT_COMPLETE=bash_complete git-agent 2>/dev/null)
    for line in $response; do
        case ${line%%,*} in
            plain) list+="${line#*,}"$'\n' ;;
            file) compopt -o default 2>/dev/null; COMPREPLY=(); return 0 ;;
            dir) compopt -o dirnames 2>/dev/null; COMPREPLY=(); return 0 ;;
        esac
    done
    if declare -F __gitcomp_nl >/dev/null; then
        __gitcomp_nl "$list"
    else
        COMPREPLY=($(compgen -W "$list" -- "${words[cword]}"))
    fi
}
"""

# zsh's _git calls _git-<subcommand> with words starting at "agent": click skips that first word.
_ZSH_GIT = """
# `git agent <TAB>`: zsh's _git calls _git-agent
_git-agent() { _git_agent_completion "$@" }
"""

# fish: complete `git agent ...` by handing click the line from "agent" on, as git-agent.
_FISH_GIT = r"""
# `git agent <TAB>`
function __git_agent_git_completion
    set -l line (string replace -r '^.*?\bagent(\s|$)' 'git-agent$1' -- (commandline -cp))
    set -l response (env _GIT_AGENT_COMPLETE=fish_complete COMP_WORDS="$line" \
        COMP_CWORD=(commandline -t) git-agent)
    for completion in $response
        set -l metadata (string split -m1 "," $completion)
        if test $metadata[1] = "plain"
            echo $metadata[2]
        else if test $metadata[1] = "file"
            __fish_complete_path $metadata[2]
        else if test $metadata[1] = "dir"
            __fish_complete_directories $metadata[2]
        end
    end
end
complete --no-files --command git --condition '__fish_seen_subcommand_from agent' \
    --arguments '(__git_agent_git_completion)'
"""

HEADER = {
    shell: f"# {shell} completion for git-agent and `git agent` (git agent completion {shell})\n"
    for shell in ("bash", "fish")
}
HEADER["zsh"] = ""  # zsh wants `#compdef` on the first line; click's script has it


def script(shell: str, click_source: str) -> str:
    """The whole completion script for a shell: click's part and the `git agent` glue."""
    glue = {"bash": _BASH_GIT, "zsh": _ZSH_GIT, "fish": _FISH_GIT}[shell]
    if shell == "zsh":  # define the glue before click's tail, which may call the function
        head, sep, tail = click_source.partition("\nif [[ $zsh_eval_context")
        return head.rstrip("\n") + "\n" + glue + sep + tail
    return HEADER[shell] + click_source.rstrip("\n") + "\n" + glue
