#!/usr/bin/env bash
# Install gitmlx: a virtualenv with the package and its dependencies, `git-mlx` on PATH,
# and the global filter configuration (`git mlx install`). Safe to re-run.
#
#   GITMLX_HOME  where the virtualenv goes   (default: ~/.local/share/gitmlx)
#   GITMLX_BIN   where the git-mlx link goes (default: ~/.local/bin if on PATH,
#                else /usr/local/bin if writable, else ~/.local/bin plus a PATH hint)
set -euo pipefail

die() { printf 'error: %s\n' "$1" >&2; [ $# -gt 1 ] && printf 'hint: %s\n' "$2" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

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

home=${GITMLX_HOME:-$HOME/.local/share/gitmlx}
venv=$home/venv
if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtualenv $venv"
  "$python" -m venv "$venv"
fi
echo "installing gitmlx and its dependencies (boto3, click, tqdm, pyfastcdc, zstandard)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$here"

on_path() { case ":$PATH:" in *":$1:"*) return 0 ;; *) return 1 ;; esac; }
bin=${GITMLX_BIN:-}
if [ -z "$bin" ]; then
  if on_path "$HOME/.local/bin"; then bin=$HOME/.local/bin
  elif on_path /usr/local/bin && [ -w /usr/local/bin ]; then bin=/usr/local/bin
  else bin=$HOME/.local/bin
  fi
fi
mkdir -p "$bin"
ln -sf "$venv/bin/git-mlx" "$bin/git-mlx"
echo "linked $bin/git-mlx"

# Global filter configuration only: run outside any repository, so no hooks are written
# into whatever checkout this script happens to be run from (gitmlx's own, say).
(cd / && "$venv/bin/git-mlx" install --global)

if ! on_path "$bin"; then
  echo
  echo "git-mlx is not on your PATH yet. Add this line to your shell profile:"
  echo "  export PATH=\"$bin:\$PATH\""
fi
echo "done: try 'git mlx demo'"
