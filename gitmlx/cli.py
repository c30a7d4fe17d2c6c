"""The `git-mlx` command line: parse arguments, call `commands.<x>.run`, map errors to
exit statuses (0 ok, 1 known failure, 2 usage, 3 bug with a crash log, 130 interrupted).

Owns: click (with cli_help.py, which adds `help`, `completion` and `doctor`), and the
only top-level error handler.
The commands git itself runs (filters and hooks) are dispatched before click is
imported: git may start `git-mlx` many times per command, and click's import would be
most of each start (figures: bench/README.md, "Start-up").
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

from gitmlx import errors, ui


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops as Ctrl-C does: transfers stop, uploads abort


def _guard(call: Callable[[], int]) -> int:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    try:
        return call()
    except errors.MlxError as exc:
        ui.report(exc)
        return exc.exit_status
    except KeyboardInterrupt:
        ui.note("interrupted")
        return errors.EXIT_INTERRUPTED
    except BrokenPipeError:
        return errors.EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the one place a bug is turned into exit 3
        log = ui.write_crash_log(exc)
        shown = log if log.startswith("(") else f"with '{log}'"
        ui.error(f"internal error: {type(exc).__name__}: {exc}", f"this is a bug; please report it {shown}")
        return errors.EXIT_BUG


def _fast_path(argv: list[str]) -> Callable[[], int] | None:
    """The git-invoked commands, parsed by hand to keep their start-up small."""
    if not argv:
        return None
    name, rest = argv[0], argv[1:]
    skip = "--skip" in rest
    path = rest[rest.index("--") + 1] if "--" in rest and rest.index("--") + 1 < len(rest) else ""
    if name == "fetch-worker":  # the filter's download process (checkout/fetch_worker.py)
        from gitmlx.checkout import fetch_worker

        return fetch_worker.run
    if name == "filter-process":
        from gitmlx.git import plumbing

        plumbing.read_config_ahead()  # git reads its config files while the filter's modules load
        from gitmlx.commands import filter_process

        return lambda: filter_process.run(skip_smudge=skip)
    if name == "clean":
        from gitmlx.commands import clean

        return lambda: clean.run(path=path)
    if name == "smudge":
        from gitmlx.commands import smudge

        return lambda: smudge.run(path=path, skip_smudge=skip)
    if name in ("post-checkout", "post-merge", "post-commit"):
        from gitmlx.commands import hook_events

        return lambda: hook_events.run(event=name, args=rest)
    if name == "pre-push" and 1 <= len(rest) <= 2 and not any(arg.startswith("-") for arg in rest):
        from gitmlx.commands import pre_push  # the hook: REMOTE [URL]; anything else goes to click

        return lambda: pre_push.run(remote_name=rest[0], remote_url=rest[1] if len(rest) > 1 else "")
    if name == "textconv":  # diff.mlx.textconv: git appends the file name as the last argument
        from gitmlx.commands import textconv

        return lambda: textconv.run(path=rest[-1] if rest else "")
    if name == "diff-driver":  # diff.mlx.command: git appends both sides of the diff
        from gitmlx.commands import diff_driver

        return lambda: diff_driver.run(rest)
    return None


_COMPLETE_VAR = "_GIT_MLX_COMPLETE"  # click's completion answers to it (completion/ scripts set it)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # The collector paused while the command's modules load, and their objects set aside
    # (gc.freeze) once loaded: they all live on, and the full collections the growing
    # heap would trigger, then and later, would walk them all to free nothing.
    gc.disable()
    try:
        fast = _fast_path(args)
    finally:
        gc.freeze()
        gc.enable()
    if fast is not None:
        return _guard(fast)
    group = _build_group()
    try:
        return group.main(args=args, prog_name="git mlx", standalone_mode=False, complete_var=_COMPLETE_VAR) or 0
    except Exception as exc:  # click's own usage errors
        import click

        from gitmlx import cli_help

        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        no_args_is_help = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2: help, as-is
        if isinstance(exc, click.UsageError) and not isinstance(exc, no_args_is_help):
            cli_help.show_usage_error(exc)
            return errors.EXIT_USAGE
        if isinstance(exc, click.ClickException):
            exc.show()
            return errors.EXIT_USAGE
        if isinstance(exc, click.exceptions.Abort):
            return errors.EXIT_INTERRUPTED
        raise


def _build_group():  # noqa: C901 - one flat list of subcommands reads best
    # Over 80 lines on purpose: one short, declarative definition per subcommand, in
    # `git mlx --help` order; splitting them across functions would only add lookups.
    import click

    from gitmlx import cli_help

    def call(make: Callable[[], int]) -> None:
        status = _guard(make)
        if status == errors.EXIT_USAGE:
            sys.stderr.write(f"hint: see '{cli_help.help_command(click.get_current_context())}'\n")
        if status:
            raise click.exceptions.Exit(status)

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(package_name="gitmlx", prog_name="git-mlx")
    def group() -> None:
        """Version ML artifacts with plain git: pointers in git, content in blob storage."""

    scope_options = [
        click.option("--local", "scope", flag_value="local", help="this repository's config"),
        click.option("--global", "scope", flag_value="global", default=True, help="your user config (default)"),
        click.option("--system", "scope", flag_value="system", help="the machine's config"),
    ]

    def with_scope(f):
        for option in reversed(scope_options):
            f = option(f)
        return f

    quiet_option = click.option("-q", "--quiet", is_flag=True, help="no progress output")
    json_option = click.option("--json", "as_json", is_flag=True, help="print one JSON document (docs/json-output.md)")

    @group.command()
    @with_scope
    @click.option("--skip-smudge", is_flag=True, help="leave pointers on checkout (restore with 'git mlx pull')")
    @click.option("--force", is_flag=True, help="keep existing foreign hooks by chaining them")
    def install(scope: str, skip_smudge: bool, force: bool) -> None:
        """Configure the filters and, inside a repository, install the hooks."""
        from gitmlx.commands import install as cmd

        call(lambda: cmd.run(scope=scope, skip_smudge=skip_smudge, force=force))

    @group.command()
    @with_scope
    def uninstall(scope: str) -> None:
        """Remove the filter configuration and gitmlx's hooks."""
        from gitmlx.commands import uninstall as cmd

        call(lambda: cmd.run(scope=scope))

    @group.command()
    @click.argument("patterns", nargs=-1)
    def track(patterns: tuple[str, ...]) -> None:
        """Track PATTERNs with gitmlx (no argument lists tracked patterns)."""
        from gitmlx.commands import track as cmd

        call(lambda: cmd.run_track(patterns=list(patterns)))

    @group.command()
    @click.argument("patterns", nargs=-1, required=True)
    def untrack(patterns: tuple[str, ...]) -> None:
        """Stop tracking PATTERNs."""
        from gitmlx.commands import track as cmd

        call(lambda: cmd.run_untrack(patterns=list(patterns)))

    @group.command()
    @click.argument("action", required=False, type=click.Choice(["set", "upgrade"]))
    @click.argument("url", required=False)
    @click.option("--endpoint-url", help="S3-compatible endpoint (MinIO, R2, Ceph, ...)")
    @click.option("--region", help="S3 region")
    def remote(action: str | None, url: str | None, endpoint_url: str | None, region: str | None) -> None:
        """Show the artifact remote, 'set URL' in .mlxconfig, or 'upgrade [REMOTE]' it to format 2."""
        from gitmlx.commands import remote as cmd

        if action is None:
            call(cmd.run_show)
        elif action == "upgrade":
            call(lambda: cmd.run_upgrade(remote_name=url))
        elif not url:
            raise click.UsageError("'remote set' needs a URL")
        else:
            call(lambda: cmd.run_set(url=url, endpoint_url=endpoint_url, region=region))

    @group.command()
    @click.argument("remote_name", required=False)
    @click.argument("refs", nargs=-1)
    @click.option("--all", "all_refs", is_flag=True, help="everything any ref reaches")
    @quiet_option
    @json_option
    def push(remote_name: str | None, refs: tuple[str, ...], all_refs: bool, quiet: bool, as_json: bool) -> None:
        """Upload what REFs need and the artifact remote lacks."""
        from gitmlx.commands import push as cmd

        call(lambda: cmd.run(remote_name=remote_name, refs=list(refs), all_refs=all_refs, quiet=quiet, as_json=as_json))

    @group.command("pre-push")
    @click.argument("remote_name")
    @click.argument("remote_url", required=False, default="")
    def pre_push(remote_name: str, remote_url: str) -> None:
        """(git hook) Upload objects before git pushes refs."""
        from gitmlx.commands import pre_push as cmd

        call(lambda: cmd.run(remote_name=remote_name, remote_url=remote_url))

    fetch_filters = [
        click.option("-I", "--include", "include", multiple=True, help="only paths matching (repeatable)"),
        click.option("-X", "--exclude", "exclude", multiple=True, help="skip paths matching (repeatable)"),
    ]

    def with_filters(f):
        for option in reversed(fetch_filters):
            f = option(f)
        return f

    @group.command()
    @click.argument("remote_name", required=False)
    @click.argument("refs", nargs=-1)
    @with_filters
    @click.option("--all", "all_history", is_flag=True, help="every object in history")
    @quiet_option
    @json_option
    def fetch(remote_name, refs, include, exclude, all_history, quiet, as_json) -> None:
        """Download what REFs need into the local store."""
        from gitmlx.commands import fetch as cmd

        call(
            lambda: cmd.run(
                remote_name=remote_name,
                refs=list(refs),
                include=list(include),
                exclude=list(exclude),
                all_history=all_history,
                quiet=quiet,
                as_json=as_json,
            )
        )

    @group.command()
    @click.argument("paths", nargs=-1)
    def checkout(paths: tuple[str, ...]) -> None:
        """Replace pointer files with content from the local store."""
        from gitmlx.commands import checkout as cmd

        call(lambda: cmd.run(paths=list(paths)))

    @group.command()
    @click.argument("remote_name", required=False)
    @with_filters
    @quiet_option
    @json_option
    def pull(remote_name, include, exclude, quiet, as_json) -> None:
        """Fetch what HEAD needs and check it out."""
        from gitmlx.commands import pull as cmd

        call(
            lambda: cmd.run(
                remote_name=remote_name, include=list(include), exclude=list(exclude), quiet=quiet, as_json=as_json
            )
        )

    @group.command("ls-files")
    @click.option("-s", "--size", "show_size", is_flag=True, help="show sizes")
    @click.option("-a", "--all", "all_history", is_flag=True, help="every tracked object in history")
    @click.option("-z", "nul", is_flag=True, help="end entries with NUL, paths unquoted")
    @json_option
    def ls_files(show_size: bool, all_history: bool, nul: bool, as_json: bool) -> None:
        """List tracked artifacts at HEAD: oid, '*' restored or '-' pointer only, path."""
        from gitmlx.commands import ls_files as cmd

        call(lambda: cmd.run(show_size=show_size, all_history=all_history, nul=nul, as_json=as_json))

    @group.command()
    @json_option
    def status(as_json: bool) -> None:
        """Artifacts staged, modified, and not yet pushed."""
        from gitmlx.commands import status as cmd

        call(lambda: cmd.run(as_json=as_json))

    @group.command()
    @json_option
    def env(as_json: bool) -> None:
        """Resolved configuration, where each value came from, and versions."""
        from gitmlx.commands import env as cmd

        call(lambda: cmd.run(as_json=as_json))

    @group.command()
    @click.argument("file")
    def pointer(file: str) -> None:
        """Print the pointer FILE would get."""
        from gitmlx.commands import pointer as cmd

        call(lambda: cmd.run(path=file))

    @group.command()
    @click.option("--remote", "check_remote", is_flag=True, help="also check the remote holds what HEAD needs")
    @click.option("--full", is_flag=True, help="with --remote: rebuild each object from the remote and verify it")
    @click.option("--repair", is_flag=True, help="with --remote: upload each damaged object again from this clone")
    @click.option("--pointers", is_flag=True, help="only list tracked files that hold content instead of a pointer")
    @quiet_option
    @json_option
    def fsck(check_remote: bool, full: bool, repair: bool, pointers: bool, quiet: bool, as_json: bool) -> None:
        """Re-hash the local store (corrupt objects go to bad/); check the remote."""
        from gitmlx.commands import fsck as cmd

        call(
            lambda: cmd.run(
                check_remote=check_remote, full=full, quiet=quiet, repair=repair, pointers=pointers, as_json=as_json
            )
        )

    @group.command()
    @click.option("--dry-run", is_flag=True, help="only report what would be deleted")
    @click.option("--verify-remote", is_flag=True, help="delete only objects whose manifest and packs are intact")
    @click.option("-v", "--verbose", is_flag=True, help="list each object deleted")
    def prune(dry_run: bool, verify_remote: bool, verbose: bool) -> None:
        """Delete local objects that no recent ref needs and that the remote holds."""
        from gitmlx.commands import prune as cmd

        call(lambda: cmd.run(dry_run=dry_run, verify_remote=verify_remote, verbose=verbose))

    @group.command()
    @click.option("--remote", "remote_flag", is_flag=True, help="collect the artifact remote (required)")
    @click.argument("remote_name", required=False)
    @click.option("--dry-run", is_flag=True, help="report only (the default)")
    @click.option("--confirm", is_flag=True, help="delete what is due and mark what is unreachable")
    @click.option("--grace", type=click.FloatRange(min=0), metavar="DAYS", help="grace period (default mlx.gcgrace, 7)")
    def gc(remote_flag: bool, remote_name: str | None, dry_run: bool, confirm: bool, grace: float | None) -> None:
        """Delete remote objects no ref of the git remote reaches (dry run unless --confirm)."""
        if not remote_flag:
            raise click.UsageError("only 'gc --remote' exists; 'git mlx prune' cleans the local store")
        if dry_run and confirm:
            raise click.UsageError("--dry-run and --confirm contradict each other")
        from gitmlx.commands import gc as cmd

        call(lambda: cmd.run(remote_name=remote_name, confirm=confirm, grace=grace))

    @group.command()
    @click.argument("remote_name", required=False)
    @json_option
    def du(remote_name: str | None, as_json: bool) -> None:
        """Logical bytes vs bytes stored, locally and on the remote (the dedup ratio)."""
        from gitmlx.commands import du as cmd

        call(lambda: cmd.run(remote_name=remote_name, as_json=as_json))

    @group.group()
    def migrate() -> None:
        """Move a repository to gitmlx (from Git LFS, or large blobs in history), or back out."""

    @migrate.command("from-lfs", short_help="Take over a Git LFS repository, history kept.")
    @click.option("--fetch", is_flag=True, help="run 'git lfs fetch --all' first (needs git-lfs)")
    def migrate_from_lfs(fetch: bool) -> None:
        """Switch filter=lfs to gitmlx and import .git/lfs/objects; LFS pointers keep working."""
        from gitmlx.commands import migrate as cmd

        call(lambda: cmd.run_from_lfs(fetch=fetch))

    @migrate.command("import", short_help="Rewrite history so matching blobs become pointers.")
    @click.option("-I", "--include", "include", multiple=True, required=True, help="gitattributes pattern (repeatable)")
    @click.option("--everything", is_flag=True, help="rewrite every ref, remote-tracking ones included")
    @click.option("--above", metavar="SIZE", help="only blobs larger than SIZE (e.g. 1MiB)")
    @click.argument("refs", nargs=-1)
    def migrate_import(include: tuple[str, ...], everything: bool, above: str | None, refs: tuple[str, ...]) -> None:
        """Rewrite REFs (default: the current branch) so matching blobs become pointers."""
        from gitmlx.commands import migrate as cmd

        call(lambda: cmd.run_import(include=list(include), refs=list(refs), everything=everything, above=above))

    @migrate.command("export", short_help="Rewrite history back to Git LFS or plain git.")
    @click.option("--to", "to", type=click.Choice(["lfs", "git"]), required=True, help="Git LFS pointers, or content")
    @click.option("--everything", is_flag=True, help="rewrite every ref, remote-tracking ones included")
    @click.option("--allow-missing", is_flag=True, help="rewrite even if objects are missing (their pointers stay)")
    @quiet_option
    @click.argument("refs", nargs=-1)
    def migrate_export(to: str, everything: bool, allow_missing: bool, quiet: bool, refs: tuple[str, ...]) -> None:
        """Rewrite REFs (default: the current branch) so gitmlx pointers become Git LFS pointers or content."""
        from gitmlx.commands import migrate as cmd

        call(
            lambda: cmd.run_export(
                to=to, refs=list(refs), everything=everything, allow_missing=allow_missing, quiet=quiet
            )
        )

    @group.command()
    @click.option("--keep", is_flag=True, help="keep the scratch folder")
    def demo(keep: bool) -> None:
        """Track, commit, push, clone and verify a model in a scratch folder."""
        from gitmlx.commands import demo as cmd

        call(lambda: cmd.run(keep=keep))

    plumbing_names = ("filter-process", "clean", "smudge", "post-checkout", "post-merge", "post-commit")
    for name in (*plumbing_names, "textconv", "diff-driver"):

        @group.command(name, hidden=True, context_settings={"ignore_unknown_options": True})
        @click.argument("args", nargs=-1, type=click.UNPROCESSED)
        def plumbing(args: tuple[str, ...], _name: str = name) -> None:
            fast = _fast_path([_name, *args])
            assert fast is not None
            call(fast)

    cli_help.add_help_commands(group, call)
    return group


def man_page() -> str:
    """The git-mlx(1) page, rendered from the command line's own help (hatch_build.py)."""
    from gitmlx import cli_help

    return cli_help.man_page_of(_build_group())
