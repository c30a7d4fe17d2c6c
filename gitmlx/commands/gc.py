"""`git mlx gc --remote [REMOTE] [--confirm] [--grace DAYS]`: delete artifact-remote
objects no ref of the git remote reaches, in two phases a grace period apart (a dry run
unless `--confirm`). See docs/storage-format.md, "Garbage collection"."""

from __future__ import annotations

import time

from gitmlx import actions, ui
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError, UsageError
from gitmlx.format.sizes import human_size
from gitmlx.maintenance import gc, reach


def _git_remotes_sharing(ctx: RepoContext, git_remote: str, url: str) -> list[str]:
    """`git_remote` and every other git remote whose artifacts live on the same remote:
    their refs count too."""
    names = [git_remote]
    for name in ctx.git_remotes():
        if name == git_remote:
            continue
        try:
            if ctx.artifact_url(name).value == url:
                names.append(name)
        except MlxError:
            continue
    return names


def _counts(manifests: dict[str, int], packs: dict[str, int]) -> str:
    total = sum(manifests.values()) + sum(packs.values())
    return f"{len(manifests)} manifest(s) and {len(packs)} pack(s) ({human_size(total)})"


def run(*, remote_name: str | None, confirm: bool, grace: float | None) -> int:
    ctx = RepoContext()
    if remote_name and remote_name not in ctx.git_remotes():
        raise UsageError(f"no git remote named '{remote_name}'", "see 'git remote -v'")
    git_remote = remote_name or ctx.default_git_remote()
    if git_remote is None:
        raise MlxError(
            "gc --remote needs a git remote: its refs decide what is still needed",
            "name one: 'git mlx gc --remote REMOTE'",
        )
    days = actions.grace_days(ctx, grace)
    url = ctx.artifact_url(git_remote).value
    remote = ctx.open_remote(git_remote)
    names = _git_remotes_sharing(ctx, git_remote, url)
    reachable = reach.reachable(ctx.top, names, lambda message: ui.phase("gc", message))
    ui.phase(
        "gc", f"listing remote '{remote.display_url}' and reading the manifests of {len(reachable)} reachable objects"
    )
    report = gc.collect_garbage(
        remote, reachable, ctx.store.tmp_dir, days * 86400, confirm, ctx.config.integer("mlx.concurrency")
    )
    if confirm and report.deleted_manifests:  # the record must not vouch for what is gone
        actions.remote_record(ctx).forget(remote.identity, report.deleted_manifests)
    refs = ", ".join(f"'{n}'" for n in names)
    held = {**report.shard_entries, **report.manifests}  # format 2: manifests in shards count too
    ui.info(f"remote '{remote.display_url}': {_counts(held, report.packs)}; refs of {refs} and local refs")
    for key in report.unreadable_notes:
        ui.warn(f"gc note '{key}' on the remote is unreadable and was ignored; delete it if it is not gitmlx's")
    for oid in report.damaged_manifests:
        ui.warn(
            f"manifest of object {oid[:10]} is damaged, so no pack was deleted or marked; "
            "run 'git mlx fsck --remote' to find the file that uses it"
        )
    if report.aborted_uploads:
        ui.info(f"aborted {report.aborted_uploads} unfinished upload(s) older than the grace period")
    if report.stopped:
        ui.warn(f"deleted only part of what was due: {report.stopped}; run gc again later")
    due = _counts(report.deleted_manifests, report.deleted_packs)
    marked = _counts(report.marked_manifests, report.marked_packs)
    grace_text = f"{days:g} day(s)"
    if confirm:
        ui.info(f"deleted {due}: freed {human_size(report.freed_bytes)}")
        if report.pending_note:
            after = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(report.now + days * 86400))
            ui.info(
                f"marked {marked} no ref reaches in '{report.pending_note}'; "
                f"a 'git mlx gc --remote --confirm' from {after} on deletes those still unreachable"
            )
        else:
            ui.info("nothing unreachable left to mark")
    else:
        ui.info(f"would delete now: {due}, freeing {human_size(report.freed_bytes)}")
        ui.info(f"would mark for deletion after {grace_text}: {marked}")
        ui.note("dry run: nothing was changed; run 'git mlx gc --remote --confirm' to do it")
    return 0
