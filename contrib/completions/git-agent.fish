# fish completion for git-agent and `git agent` (git agent completion fish)
function _git_agent_completion;
    set -l response (env _GIT_AGENT_COMPLETE=fish_complete COMP_WORDS=(commandline -cp) COMP_CWORD=(commandline -t) git-agent);

    for completion in $response;
        set -l metadata (string split "," $completion);

        if test $metadata[1] = "dir";
            __fish_complete_directories $metadata[2];
        else if test $metadata[1] = "file";
            __fish_complete_path $metadata[2];
        else if test $metadata[1] = "plain";
            echo $metadata[2];
        end;
    end;
end;

complete --no-files --command git-agent --arguments "(_git_agent_completion)";

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
