"""Help for the `git mlx` command line: `git mlx help [COMMAND]`, usage errors that end
with the command showing help, shell completion scripts, and `doctor`.

Owns: the commands about gitmlx itself, added to cli.py's click group. git runs
`man git-mlx` for `git mlx --help`, so the help here and the manual page that
`man_page_of` renders (hatch_build.py writes it into the wheel) say the same.
Must not: be imported by the commands git runs often (filters, hooks): it is click.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def help_command(ctx) -> str:
    """The command that shows help for the command `ctx` runs: 'git mlx help migrate import'."""
    names = ctx.command_path.split()[2:] if ctx is not None else []
    return " ".join(["git mlx help", *names])


def show_usage_error(exc) -> None:
    """A click usage error in git's words, ending with the command that shows help."""
    ctx = exc.ctx
    if ctx is not None:
        sys.stderr.write(ctx.get_usage() + "\n")
    sys.stderr.write(f"error: {exc.format_message()}\nhint: see '{help_command(ctx)}'\n")


def _context_for(root, names: tuple[str, ...]):
    """The click context of the command `git mlx NAMES...`; a usage error names what is unknown."""
    import click

    ctx = root
    for i, name in enumerate(names):
        found = ctx.command.get_command(ctx, name) if isinstance(ctx.command, click.Group) else None
        if found is None or found.hidden:
            raise click.UsageError(f"'{' '.join(names[: i + 1])}' is not a git mlx command", ctx=ctx)
        ctx = found.make_context(name, [], parent=ctx, resilient_parsing=True)
    return ctx


def man_page_of(group) -> str:
    """The git-mlx(1) page: the help of the click `group` and of every command, as roff."""
    from gitmlx import __version__
    from gitmlx.format import manpage

    return manpage.render_commands(group.make_context("git mlx", [], resilient_parsing=True), __version__)


def _completion_script(shell: str) -> str:
    """completion/git-mlx.SHELL, shipped in the wheel as gitmlx/_completion."""
    from pathlib import Path

    packaged = Path(__file__).resolve().parent / "_completion" / f"git-mlx.{shell}"
    return (packaged if packaged.is_file() else packaged.parents[2] / "completion" / packaged.name).read_text("utf-8")


def _command_names(ctx, param, incomplete: str) -> list[str]:
    root, group = ctx.find_root(), ctx.find_root().command
    return [n for n in group.list_commands(root) if n.startswith(incomplete) and not group.get_command(root, n).hidden]


def add_help_commands(group, call: Callable[[Callable[[], int]], None]) -> None:
    """`help`, `completion` and `doctor`: commands about gitmlx itself."""
    import click

    @group.command("help")
    @click.argument("names", nargs=-1, metavar="[COMMAND]...", shell_complete=_command_names)
    @click.option("--man", is_flag=True, help="print the git-mlx(1) manual page (roff) instead")
    @click.pass_context
    def show_help(ctx, names: tuple[str, ...], man: bool) -> None:
        """Show how to use git mlx or one of its commands (git mlx help COMMAND)."""
        if man:
            click.echo(man_page_of(ctx.find_root().command), nl=False)
            return
        click.echo(_context_for(ctx.find_root(), names).get_help())

    @group.command()
    @click.argument("shell", type=click.Choice(["bash", "zsh"]))
    def completion(shell: str) -> None:
        """Print the completion script of 'git mlx' for SHELL (bash or zsh)."""
        click.echo(_completion_script(shell), nl=False)

    @group.command()
    def doctor() -> None:
        """Check the set-up (filters, hooks, store, remote, credentials) and say what to fix."""
        from gitmlx.commands import doctor as cmd

        call(cmd.run)
