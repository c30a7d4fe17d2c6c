"""Bash completion of `git mlx ...` through git's own completion, which finds `_git_mlx` by
loading the file `git-mlx` from bash-completion's user folder, where install.sh puts it."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from tests.support.commands import mlx, run

GIT_COMPLETION = Path("/usr/share/bash-completion/completions/git")
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")


def complete(sealed, line: str, script: Path) -> list[str]:
    """The candidates bash offers for `line` (completing its last word) in an interactive
    shell: through git's completion when the machine has it, else `_git_mlx` directly as
    git's completion would call it."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    setup = f"source {shlex.quote(str(script))}\n"
    if GIT_COMPLETION.is_file():
        setup = f"source {GIT_COMPLETION}\n"
        if BASH_COMPLETION.is_file():  # its loader finds ~/.local/share/bash-completion/completions/git-mlx
            setup = f"source {BASH_COMPLETION}\n{setup}"
        else:
            setup += f"source {shlex.quote(str(script))}\n"
        call = "__git_wrap__git_main"
    else:
        call = 'local __git_cmd_idx=1 words=("${COMP_WORDS[@]}") cword=$COMP_CWORD; _git_mlx'
    program = (
        setup
        + f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        + f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
        + f"f() {{ {call}; }}; f\n"
        + 'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = run(["bash", "--norc", "--noprofile", "-i", "-c", program], sealed.root)
    return [c.strip() for c in result.stdout.splitlines() if c.strip()]


@pytest.fixture
def installed_script(sealed) -> Path:
    """`git mlx completion bash` saved where install.sh saves it."""
    folder = sealed.home / ".local" / "share" / "bash-completion" / "completions"
    folder.mkdir(parents=True)
    script = folder / "git-mlx"
    script.write_text(mlx("completion", "bash", cwd=sealed.root).stdout)
    return script


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("git mlx tr", ["track"]),
        ("git mlx un", ["uninstall", "untrack"]),
        ("git mlx migrate ", ["export", "from-lfs", "import"]),
        ("git mlx fetch --inc", ["--include"]),
        ("git mlx help ", ["checkout", "doctor", "track"]),
    ],
)
def test_bash_completes_git_mlx_commands_and_options(sealed, installed_script: Path, line: str, expected) -> None:
    found = complete(sealed, line, installed_script)
    assert all(e in found for e in expected), found
    if len(expected) < 3:
        assert sorted(found) == sorted(expected), found


def test_completion_scripts_define_gits_hook_functions(sealed) -> None:
    assert "_git_mlx ()" in mlx("completion", "bash", cwd=sealed.root).stdout
    assert "_git-mlx()" in mlx("completion", "zsh", cwd=sealed.root).stdout
