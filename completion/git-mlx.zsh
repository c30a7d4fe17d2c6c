#compdef git-mlx
# zsh completion for `git mlx ...` (and `git-mlx ...`).
#
# zsh's _git calls _git-mlx for `git mlx`. Install this file as `_git-mlx` in a folder of
# $fpath before compinit runs (install.sh uses ~/.local/share/zsh/site-functions), or
# source it from ~/.zshrc after compinit: eval "$(git mlx completion zsh)"
# The candidates come from git-mlx itself (click's completion protocol).

_git-mlx() {
	# words[1] is "mlx" (from _git) or "git-mlx"; CURRENT is the word being completed.
	local -a response plain described
	local i
	response=("${(@f)$(COMP_WORDS="git-mlx ${words[2,CURRENT]}" COMP_CWORD=$((CURRENT - 1)) \
		_GIT_MLX_COMPLETE=zsh_complete git-mlx 2>/dev/null)}")
	for (( i = 1; i + 2 <= ${#response}; i += 3 )); do
		case ${response[i]} in
		plain)
			if [[ ${response[i+2]} == _ ]]; then
				plain+=("${response[i+1]}")
			else
				described+=("${response[i+1]//:/\\:}:${response[i+2]}")
			fi ;;
		file|dir) _files; return ;;
		esac
	done
	(( ${#described} )) && _describe -t commands 'git mlx' described
	(( ${#plain} )) && compadd -U -- "${plain[@]}"
	(( ${#described} + ${#plain} )) || _files
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
	_git-mlx "$@"
else
	compdef _git-mlx git-mlx
fi
