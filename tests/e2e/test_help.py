"""Help answers wherever a user asks for it: `git mlx --help` (git opens the git-mlx man
page), `git mlx help [COMMAND]`, and the last line of every usage error."""

from __future__ import annotations

import shutil

import pytest

from tests.support.commands import assert_no_traceback, mlx, run

#: No pager anywhere: output goes straight to the pipe, as in a CI log.
NO_PAGER = {"PAGER": "cat", "GIT_PAGER": "cat", "MANPAGER": "cat"}


@pytest.mark.skipif(shutil.which("man") is None, reason="no `man` here: git cannot show any manual page")
def test_git_mlx_dash_dash_help_shows_the_manual_page_installed_beside_the_program(sealed, monkeypatch) -> None:
    # git runs `man git-mlx`; man finds the page the wheel put in ../share/man/man1 of the
    # folder on PATH that holds git-mlx (this interpreter's venv). No MANPATH: man's own
    # search, as on a fresh machine.
    monkeypatch.delenv("MANPATH", raising=False)
    result = mlx("--help", cwd=sealed.root, env=NO_PAGER)
    assert "GIT-MLX(1)" in result.stdout and "git mlx track" in result.stdout, str(result)
    where = run(["man", "-w", "git-mlx"], sealed.root, env=NO_PAGER).stdout.strip()
    assert where.endswith("share/man/man1/git-mlx.1"), where


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["help"], "Usage: git mlx [OPTIONS] COMMAND"),
        (["help", "track"], "Usage: git mlx track [OPTIONS] [PATTERNS]..."),
        (["help", "migrate", "import"], "Usage: git mlx migrate import [OPTIONS]"),
        (["-h"], "Usage: git mlx [OPTIONS] COMMAND"),
        (["track", "-h"], "Usage: git mlx track [OPTIONS] [PATTERNS]..."),
    ],
    ids=" ".join,
)
def test_help_command_shows_usage_and_exits_0(sealed, args: list[str], usage: str) -> None:
    result = mlx(*args, cwd=sealed.root, env=NO_PAGER)
    assert result.stdout.startswith(usage), str(result)
    if args[:1] == ["help"] and len(args) == 1:
        assert "track" in result.stdout and "doctor" in result.stdout


@pytest.mark.parametrize(
    ("args", "shows_help"),
    [
        (["no-such-command"], "git mlx help"),
        (["track", "--no-such-option"], "git mlx help track"),
        (["remote", "set"], "git mlx help remote"),
        (["gc"], "git mlx help gc"),
        (["migrate", "import"], "git mlx help migrate import"),
        (["install", "--local"], "git mlx help install"),  # raised by the command itself
        (["help", "no-such-command"], "git mlx help"),
    ],
    ids=" ".join,
)
def test_every_usage_error_ends_with_the_command_that_shows_help(sealed, args: list[str], shows_help: str) -> None:
    result = mlx(*args, cwd=sealed.root, check=False)
    assert_no_traceback(result)
    assert result.returncode == 2, str(result)
    assert result.stderr.splitlines()[-1] == f"hint: see '{shows_help}'", str(result)
    assert run(shows_help.split(), sealed.root).returncode == 0


def test_manual_page_has_a_section_for_every_command(sealed) -> None:
    page = mlx("help", "--man", cwd=sealed.root).stdout
    listed = mlx("help", cwd=sealed.root).stdout.split("Commands:\n")[1].splitlines()
    commands = [line.split()[0] for line in listed if line.startswith("  ") and not line.startswith("   ")]
    assert len(commands) > 15, listed
    for name in ("track", "doctor", "help", "migrate import"):
        assert f".SS git mlx {name}\n" in page
    for name in commands:
        assert f".SS git mlx {name}\n" in page, name
