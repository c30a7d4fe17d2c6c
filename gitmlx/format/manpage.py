"""The `git-mlx(1)` manual page, as roff text built from the command line's own help.

Owns: the page's layout (NAME, SYNOPSIS, DESCRIPTION, one subsection per command) and
escaping help text so that roff prints it as written.
Must not: import click or know the commands: cli hands it click's root context, and only
the methods that list commands and render their help are called, so the page cannot
drift from `git mlx help COMMAND`.

git answers `git mlx --help` itself, by running `man git-mlx`: this page is what it shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def _escape(line: str) -> str:
    """A line roff prints verbatim: backslashes doubled, a leading '.' or "'" neutralised."""
    line = line.replace("\\", "\\e")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def _verbatim(text: str) -> list[str]:
    return [".nf", *(_escape(line) for line in text.rstrip("\n").split("\n")), ".fi"]


def render(version: str, summary: str, overview: str, commands: Iterable[tuple[str, str]]) -> str:
    """The page. `overview` is the group's help; `commands` are (name, help text) pairs,
    the name as typed after `git mlx` (e.g. "migrate import")."""
    lines = [
        f'.TH GIT-MLX 1 "" "gitmlx {_escape(version)}" "gitmlx manual"',
        ".SH NAME",
        f"git-mlx \\- {_escape(summary)}",
        ".SH SYNOPSIS",
        ".B git mlx",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]...",
        ".br",
        ".B git mlx help",
        "[\\fICOMMAND\\fR]",
        ".SH DESCRIPTION",
        *_verbatim(overview),
        ".SH COMMANDS",
    ]
    for name, text in commands:
        lines += [f".SS git mlx {_escape(name)}", *_verbatim(text)]
    lines += [
        ".SH SEE ALSO",
        "The README.md and docs/ of the gitmlx source tree.",
        "",
    ]
    return "\n".join(lines)


def render_commands(root: Any, version: str) -> str:
    """The page for click's root context `root`: its help, then each visible command's."""
    pages = [(" ".join(ctx.command_path.split()[2:]), ctx.get_help()) for ctx in _visible(root)]
    summary = (root.command.help or "").strip().split("\n")[0].rstrip(".")
    return render(version, summary, root.get_help(), pages)


def _visible(ctx: Any) -> Iterator[Any]:
    """The context of every visible command under `ctx`, subcommands of groups included."""
    group = ctx.command
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = command.make_context(name, [], parent=ctx, resilient_parsing=True)
        yield sub
        if hasattr(command, "list_commands"):
            yield from _visible(sub)
