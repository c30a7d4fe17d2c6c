# bash completion for `git mlx ...` (and `git-mlx ...`).
#
# git's own completion calls _git_mlx for `git mlx`, loading this file by its name
# (git-mlx) from bash-completion's folders, e.g. ~/.local/share/bash-completion/completions.
# Or source it from ~/.bashrc: eval "$(git mlx completion bash)"
# The candidates come from git-mlx itself (click's completion protocol), so they always
# match the installed version.

_git_mlx ()
{
	# git's completion sets words, cword and __git_cmd_idx (the index of "mlx").
	local first=$(( ${__git_cmd_idx:-1} + 1 ))
	local -a args=("${words[@]:first:cword-first}")
	local type value
	COMPREPLY=()
	while IFS=, read -r type value; do
		# 'file' and 'dir' leave COMPREPLY empty: bash then completes file names itself.
		[ "$type" = plain ] && COMPREPLY+=("$value ")
	done < <(COMP_WORDS="git-mlx ${args[*]} ${words[cword]}" COMP_CWORD=$(( ${#args[@]} + 1 )) \
		_GIT_MLX_COMPLETE=bash_complete git-mlx 2>/dev/null)
}

_git_mlx_command ()
{
	local -a words=("${COMP_WORDS[@]}")
	local cword=$COMP_CWORD __git_cmd_idx=0
	_git_mlx
}

complete -o default -o nospace -F _git_mlx_command git-mlx
