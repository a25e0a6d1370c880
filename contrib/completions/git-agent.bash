# bash completion for git-agent and `git agent` (git agent completion bash)
_git_agent_completion() {
    local IFS=$'\n'
    local response

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD _GIT_AGENT_COMPLETE=bash_complete $1)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
        fi
    done

    return 0
}

_git_agent_completion_setup() {
    complete -o nosort -F _git_agent_completion git-agent
}

_git_agent_completion_setup;

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
