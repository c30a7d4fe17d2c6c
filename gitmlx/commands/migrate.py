"""`git mlx migrate from-lfs [--fetch]`, `git mlx migrate import --include P ...` and
`git mlx migrate export --to lfs|git`: take over a Git LFS repository (its pointers keep
working), rewrite history so large blobs become pointers, or rewrite it back out of
gitmlx. The work is in gitmlx/migrate/ (from_lfs.py, history.py, export.py); this module
fetches what an export lacks and reports."""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.config import parse_size
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError, UsageError
from gitmlx.format.sizes import human_size
from gitmlx.git.scan import TrackedFile
from gitmlx.migrate import export, from_lfs, history
from gitmlx.migrate.filter_driver import mlx_filter_config

SHOWN = 5


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(f"'{i}'" for i in items[:SHOWN]) + more


def run_from_lfs(*, fetch: bool = False) -> int:
    ctx = RepoContext()
    if ctx.paths.work_tree is None:
        raise MlxError("this is a bare repository", "run 'git mlx migrate from-lfs' in a clone with a work tree")
    top = ctx.top
    mlx_filter_config(ctx)  # fail before changing anything when gitmlx is not installed
    if fetch:
        if from_lfs.lfs_available(top):
            ui.note("running 'git lfs fetch --all' ...")
            from_lfs.fetch_lfs(top)
        else:
            ui.warn("git-lfs is not installed, so '--fetch' cannot download Git LFS objects; importing what is local")

    edits = from_lfs.switch_attributes(top)
    for edit in edits:
        ui.info(f"switched '{edit.path}': {edit.lines} line(s) from filter=lfs to filter=mlx")
    if not edits:
        ui.info("no .gitattributes line uses filter=lfs (already switched?)")

    objects = from_lfs.lfs_objects_dir(ctx)
    imported = from_lfs.import_lfs_objects(objects, ctx.store)
    where = objects.relative_to(top) if objects.is_relative_to(top) else objects
    ui.info(
        f"imported {len(imported.imported)} Git LFS object(s) ({human_size(imported.imported_bytes)}) "
        f"from '{where}' into gitmlx's store ({imported.present} already there)"
    )

    from_lfs.take_over_lfs_filter(ctx)
    ui.info("filter=lfs now runs gitmlx in this clone (filter.lfs.* in .git/config): old commits check out through it")

    removed, hooks = from_lfs.replace_lfs_hooks(top)
    if removed:
        ui.info(f"replaced Git LFS's hooks ({', '.join(removed)}) with gitmlx's")
    for path in hooks.refused:
        ui.warn(f"kept the hook '{path}' (not Git LFS's, not gitmlx's); 'git mlx install --force' chains it")

    # Only a clone Git LFS worked in can be short of its objects; a clone made after the
    # migration gets them from the gitmlx remote on checkout.
    missing = from_lfs.missing_lfs_objects(top, ctx.store) if objects.is_dir() else []
    if missing:
        ui.warn(
            f"{len({f.pointer.oid for f in missing})} object(s) named by Git LFS pointers in history are not "
            f"here: {_listed(sorted({f.path for f in missing}))}"
        )
        ui.note("hint: run 'git mlx migrate from-lfs --fetch' while the Git LFS server still has them")

    ui.info("next:")
    if edits:
        ui.info(f"  git add {' '.join(e.path for e in edits)}")
        ui.info("  git commit -m 'Move large files from Git LFS to gitmlx'")
    ui.info("  git push              # uploads what HEAD's tree and the pushed commits need")
    ui.info("  git mlx push --all    # also what older commits need, old Git LFS objects included")
    ui.info("  other clones: run 'git mlx migrate from-lfs' once, so their old commits check out through gitmlx")
    _tell_next_push(ctx)

    for bad in imported.bad:
        ui.error(f"skipped '{bad.path}': {bad.reason}")
    if imported.bad:
        raise MlxError(
            f"{len(imported.bad)} Git LFS object(s) failed verification and were not imported",
            "delete them and run 'git mlx migrate from-lfs --fetch' to download good copies",
        )
    return 0


def _tell_next_push(ctx: RepoContext) -> None:
    """What the next `git push` of HEAD will upload: what HEAD's tree and the commits the
    git remote lacks need, less what the remote record vouches for (no request is made)."""
    git_remote = ctx.default_git_remote()
    needs = actions.push_needs(ctx, ["HEAD"], [f"--remotes={git_remote}"] if git_remote else [])
    objects = {f.pointer.oid: f.pointer for f in needs.files}
    try:
        remote = ctx.open_remote(git_remote)
    except MlxError as exc:
        ui.info(f"the next 'git push' needs an artifact remote for {len(objects)} object(s): {exc.message}")
        return
    record = actions.remote_record(ctx)
    try:
        known = record.known(remote.identity, objects.values(), 0)
    finally:
        record.close()
    todo = [p for oid, p in objects.items() if oid not in known]
    absent = [p for p in todo if not ctx.store.has(p.oid)]
    ui.info(
        f"the next 'git push' uploads up to {len(todo)} object(s) ({human_size(sum(p.size for p in todo))}) "
        f"to '{remote.display_url}', those it does not hold yet"
    )
    if absent:
        at_head = sum(p.oid in needs.at_tips for p in absent)
        ui.warn(
            f"{len(absent)} of them ({human_size(sum(p.size for p in absent))}) are not in this clone; "
            f"{at_head} are in HEAD's tree, and the push is refused unless the artifact remote has those"
        )
        ui.note("hint: run 'git lfs fetch --all' before 'git push' (the push reads .git/lfs/objects)")


def run_import(*, include: list[str], refs: list[str], everything: bool, above: str | None) -> int:
    above_bytes = None
    if above is not None:
        above_bytes = parse_size(above)
        if above_bytes is None:
            raise UsageError(f"invalid size {above!r} for --above", "write a size such as 1MiB, 500k or 1048576")
    ctx = RepoContext()
    options = history.ImportOptions(tuple(include), tuple(refs), everything, above_bytes)
    result = history.import_history(ctx, options, lambda: ui.note("rewriting history with git-filter-repo ..."))

    ui.info(
        f"rewrote {result.commits} commit(s) of {'every ref' if everything else _listed(result.refs)}: "
        f"{result.converted} file version(s) "
        f"({human_size(result.converted_bytes)}) became gitmlx pointers, their content is in the local store"
    )
    if above_bytes is None:
        patterns = " ".join(history.encode_pattern(p) for p in include)
        ui.info(f"every rewritten commit's .gitattributes tracks: {patterns}")
    else:
        ui.info("every rewritten commit's .gitattributes tracks the paths it holds as pointers, by exact path")
    if result.kept_small:
        ui.info(f"{result.kept_small} matching file version(s) at or below {human_size(above_bytes or 0)} stayed as is")
    if result.already_pointers:
        ui.info(f"{result.already_pointers} matching file version(s) already were pointers")
    if result.metadata_dir is not None:
        ui.info(f"old → new commit ids: '{result.metadata_dir / 'commit-map'}'")
    branches = [r.removeprefix("refs/heads/") for r in result.changed_refs if r.startswith("refs/heads/")]
    tags = [r for r in result.changed_refs if r.startswith("refs/tags/")]
    ui.info("next, once you have checked the result:")
    ui.info("  git mlx push --all    # uploads the converted content to the artifact remote")
    if branches:
        ui.info(f"  git push --force origin {' '.join(branches)}")
    if tags:
        ui.info("  git push --force --tags origin")
    ui.info("  everyone else re-clones (their old clones still hold the old history)")
    ui.note(
        "hint: the old blobs stay in .git until the reflogs expire; "
        "'git reflog expire --expire=now --all && git gc --prune=now' frees the space now"
    )
    return 0


def _fetch_for_export(ctx: RepoContext, gaps: list[TrackedFile], quiet: bool) -> None:
    """Download from the artifact remote what the store lacks; an unreachable or
    unconfigured remote only leaves them missing (the caller names them)."""
    try:
        remote = ctx.open_remote()
    except MlxError as exc:
        ui.warn(f"cannot fetch the {len(gaps)} missing object(s): {exc.message}")
        return
    actions.download(ctx, remote, gaps, quiet)


def run_export(*, to: str, refs: list[str], everything: bool, allow_missing: bool, quiet: bool = False) -> int:
    ctx = RepoContext()
    plan = export.plan_export(ctx, export.ExportOptions(to, tuple(refs), everything, allow_missing))
    gaps = export.missing(ctx, plan)
    if gaps:
        _fetch_for_export(ctx, gaps, quiet)
        gaps = export.missing(ctx, plan)
    if gaps:
        paths = _listed(sorted({f.path for f in gaps}))
        count = len({f.pointer.oid for f in gaps})
        if not allow_missing:
            raise MlxError(
                f"{count} object(s) the history needs are neither local nor on the artifact remote: {paths}; "
                "nothing was changed",
                "push them from a clone that has them ('git mlx push --all'), "
                "or pass '--allow-missing' to keep their pointers without content",
            )
        ui.warn(f"{count} object(s) are missing, their pointers stay without content: {paths}")

    objects = plan.objects()
    where = "every ref" if everything else _listed([r.removeprefix("refs/heads/") for r in plan.refs])
    total = human_size(sum(p.size for p in objects.values()))
    if to == "lfs":
        ui.info(
            f"exporting {where} to Git LFS: gitmlx pointers become Git LFS pointers, filter=mlx becomes filter=lfs, "
            f"and the {len(objects)} object(s) history names ({total}) go to '.git/lfs/objects'"
        )
    else:
        ui.info(
            f"exporting {where} to plain git: the {len(objects)} object(s) history names ({total}) become git blobs, "
            "and .gitattributes lose their filter=mlx / filter=lfs drivers"
        )
    result = export.export_history(ctx, plan, lambda: ui.note("rewriting history with git-filter-repo ..."))
    _report_export(to, result)
    return 0


def _report_export(to: str, result: export.ExportResult) -> None:
    kind = "Git LFS pointers" if to == "lfs" else "their content"
    ui.info(
        f"rewrote {result.commits} commit(s): {result.pointers} pointer version(s) became {kind}, "
        f"{result.attributes} .gitattributes version(s) changed, "
        f"{result.objects} object(s) ({human_size(result.object_bytes)}) written"
    )
    if result.metadata_dir is not None:
        ui.info(f"old → new commit ids: '{result.metadata_dir / 'commit-map'}' (the old commits stay in the reflogs)")
    branches = [r.removeprefix("refs/heads/") for r in result.changed_refs if r.startswith("refs/heads/")]
    ui.info("next, once you have checked the result:")
    if to == "lfs":
        ui.info("  git lfs push --all origin    # uploads .git/lfs/objects to the Git LFS server")
    if branches:
        ui.info(f"  git push --force origin {' '.join(branches)}")
    if any(r.startswith("refs/tags/") for r in result.changed_refs):
        ui.info("  git push --force --tags origin")
    ui.info("  git mlx uninstall --local    # gitmlx's hooks and filters leave this clone")
    if to == "lfs":
        ui.info("  git lfs install              # once per machine, if Git LFS is not set up yet")
    ui.info("  everyone else re-clones (their old clones still hold the old history)")
