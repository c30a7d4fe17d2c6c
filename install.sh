#!/usr/bin/env bash
# Install gitmlx: a virtualenv with the package and its dependencies, `git-mlx` on PATH,
# its manual page (so `git mlx --help` answers), bash and zsh completion, and the global
# filter configuration (`git mlx install --global`). Safe to re-run.
#
#   ./install.sh              install (or upgrade) from this checkout
#   ./install.sh --uninstall  remove all of it again, the filter configuration included
#
# Run by a user, everything goes under $HOME:
#   ~/.local/share/gitmlx/venv                          the virtualenv   (GITMLX_HOME)
#   ~/.local/bin/git-mlx                                link to it       (GITMLX_BIN)
#   ~/.local/share/man/man1/git-mlx.1                   manual page
#   ~/.local/share/bash-completion/completions/git-mlx  bash completion
#   ~/.local/share/zsh/site-functions/_git-mlx          zsh completion
# Run by root, the same under /usr/local (the virtualenv in /usr/local/lib/gitmlx), for
# every user of the machine; the filter configuration is still root's own (--global).
# Every path written is recorded in $GITMLX_HOME/installed, which --uninstall reads.
set -euo pipefail

die() { printf 'error: %s\n' "$1" >&2; [ $# -gt 1 ] && printf 'hint: %s\n' "$2" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "$(id -u)" = 0 ]; then
  prefix=/usr/local
  home=${GITMLX_HOME:-/usr/local/lib/gitmlx}
else
  prefix=$HOME/.local
  home=${GITMLX_HOME:-$HOME/.local/share/gitmlx}
fi
venv=$home/venv
manifest=$home/installed
bin=${GITMLX_BIN:-$prefix/bin}
share=$prefix/share
[ "$(id -u)" = 0 ] || share=${XDG_DATA_HOME:-$HOME/.local/share}

uninstall() {
  [ -f "$manifest" ] || die "gitmlx is not installed here (no $manifest)" \
    "set GITMLX_HOME to where it was installed, or remove it by hand"
  if [ -x "$venv/bin/git-mlx" ]; then
    (cd / && "$venv/bin/git-mlx" uninstall --global) && echo "removed the global filter configuration (git mlx uninstall --global)"
  fi
  # Lines: "file PATH" (remove), "dir PATH" (created by install: remove if now empty),
  # "config PATH" (a global git config install created: remove if now empty).
  local kind path dirs=()
  while IFS=' ' read -r kind path; do
    case $kind in
      file) if [ -L "$path" ] || [ -f "$path" ]; then rm -f -- "$path" && echo "removed $path"; fi ;;
      dir) dirs=("$path" ${dirs[@]+"${dirs[@]}"}) ;;
      config) if [ -f "$path" ] && [ ! -s "$path" ]; then rm -f -- "$path" && echo "removed $path (empty)"; fi ;;
    esac
  done <"$manifest"
  for path in ${dirs[@]+"${dirs[@]}"}; do
    rmdir -- "$path" 2>/dev/null && echo "removed $path"
  done
  # pip keeps the wheel it built from this checkout in its cache.
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip cache remove gitmlx >/dev/null 2>&1 &&
    echo "removed gitmlx's wheel from pip's cache"
  rm -rf -- "$venv" && echo "removed $venv"
  rm -f -- "$manifest"
  rmdir -- "$home" 2>/dev/null && echo "removed $home"
  # What gitmlx itself wrote for this user: crash logs and the Python API's mirrors.
  for dir in "${XDG_STATE_HOME:-$HOME/.local/state}/gitmlx" "${XDG_CACHE_HOME:-$HOME/.cache}/gitmlx"; do
    if [ -d "$dir" ]; then rm -rf -- "$dir" && echo "removed $dir"; fi
  done
  echo "done: gitmlx is uninstalled. Repositories keep their hooks and stores until you run"
  echo "'git mlx uninstall' in each (before this script) or delete .git/mlx and the hooks."
}

case "${1:-}" in
  --uninstall) uninstall; exit 0 ;;
  "") ;;
  *) die "unknown option '$1'" "run './install.sh' to install or './install.sh --uninstall' to remove gitmlx" ;;
esac

command -v git >/dev/null 2>&1 || die "git is not installed" "install it (e.g. 'apt-get install git') and re-run ./install.sh"
python=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    python=$candidate; break
  fi
done
[ -n "$python" ] || die "Python 3.10 or newer is not installed" "install it (e.g. 'apt-get install python3 python3-venv') and re-run ./install.sh"
"$python" -c 'import venv, ensurepip' 2>/dev/null || die "Python's venv module is missing" "install it (e.g. 'apt-get install python3-venv') and re-run ./install.sh"

if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtualenv $venv"
  "$python" -m venv "$venv"
fi
echo "installing gitmlx and its dependencies (boto3, click, tqdm, pyfastcdc, zstandard) into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$here"

# Re-runs keep what the first run created (its "dir" and "config" lines).
grep -v '^file ' "$manifest" 2>/dev/null >"$manifest.new" || :
folder() {  # mkdir -p, recording each folder it creates (outermost first)
  local missing=() d=$1
  while [ ! -d "$d" ]; do missing=("$d" ${missing[@]+"${missing[@]}"}); d=$(dirname "$d"); done
  mkdir -p "$1"
  for d in ${missing[@]+"${missing[@]}"}; do printf 'dir %s\n' "$d" >>"$manifest.new"; done
}
place() {  # place KIND LINK TARGET: a symlink LINK -> TARGET, recorded for --uninstall
  folder "$(dirname "$2")"
  ln -sfn "$3" "$2"
  printf 'file %s\n' "$2" >>"$manifest.new"
  echo "linked $1: $2 -> $3"
}
write() {  # write KIND PATH: stdin into PATH, recorded for --uninstall
  folder "$(dirname "$2")"
  cat >"$2"
  printf 'file %s\n' "$2" >>"$manifest.new"
  echo "wrote $1: $2"
}
place program "$bin/git-mlx" "$venv/bin/git-mlx"
# man looks in ../share/man beside each folder on PATH: beside the program, then.
place "manual page" "$(dirname "$bin")/share/man/man1/git-mlx.1" "$venv/share/man/man1/git-mlx.1"
"$venv/bin/git-mlx" completion bash | write "bash completion" "$share/bash-completion/completions/git-mlx"
"$venv/bin/git-mlx" completion zsh | write "zsh completion" "$share/zsh/site-functions/_git-mlx"

# Global filter configuration only: run outside any repository, so no hooks are written
# into whatever checkout this script happens to be run from (gitmlx's own, say).
global_config=${GIT_CONFIG_GLOBAL:-$HOME/.gitconfig}
if [ ! -e "$global_config" ] && [ ! -e "${XDG_CONFIG_HOME:-$HOME/.config}/git/config" ]; then
  printf 'config %s\n' "$global_config" >>"$manifest.new"
fi
mv "$manifest.new" "$manifest"
(cd / && "$venv/bin/git-mlx" install --global)

case ":$PATH:" in
  *":$bin:"*) ;;
  *)
    echo
    echo "git-mlx is not on your PATH yet. Add this line to your shell profile:"
    echo "  export PATH=\"$bin:\$PATH\""
    ;;
esac
echo "zsh: add $share/zsh/site-functions to fpath before compinit to complete 'git mlx'."
echo "done: try 'git mlx demo'; './install.sh --uninstall' removes gitmlx again"
