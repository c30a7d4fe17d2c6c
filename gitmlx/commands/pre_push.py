"""`git mlx pre-push REMOTE URL` (the pre-push hook): before git sends any ref, make the
artifact remote hold every object the pushed tips' trees need and every object the pushed
commits introduce.

git writes one line per ref on stdin: `<local ref> <local sha> <remote ref> <remote sha>`.
Objects reached from the local shas and not from what the remote already has (its
remote-tracking refs and the remote shas we know) are the pushed range; each local sha's
whole tree is checked too, so a new or emptied artifact remote, or a push right after
`migrate from-lfs`, still leaves every pushed tip restorable. The remote record makes
that cheap: only objects it does not vouch for are asked about. A failure refuses the
whole push, listing the files, so no ref ever points at missing content.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from gitmlx import actions, ui
from gitmlx.context import RepoContext
from gitmlx.format.sizes import human_size
from gitmlx.git.plumbing import run_git

ZERO = "0" * 40


def parse_updates(stream: TextIO) -> tuple[list[str], list[str]]:
    """(local shas to push, remote shas the remote already has) from pre-push stdin."""
    include, exclude = [], []
    for line in stream:
        fields = line.split()
        if len(fields) != 4:
            continue
        _, local_sha, _, remote_sha = fields
        if local_sha.strip("0"):
            include.append(local_sha)
        if remote_sha.strip("0"):
            exclude.append(remote_sha)
    return include, exclude


def known_commits(ctx: RepoContext, shas: list[str]) -> list[str]:
    """The shas we have locally (a remote sha we never fetched cannot be excluded)."""
    if not shas:
        return []
    out = run_git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"], cwd=ctx.top, input="\n".join(shas).encode() + b"\n"
    )
    return [line.split()[0] for line in out.decode().splitlines() if line.endswith(" commit")]


def warn_raw_files(found: Sequence[tuple[str, int]]) -> None:
    """Warn, without refusing the push, about tracked files the pushed commits hold as
    content instead of pointers (committed where gitmlx was not installed): git pushes
    them as they are, into every clone's history. `found`: (path, size) of each, from
    the scan that finds what to upload (actions.push_needs)."""
    for path, size in found:
        ui.warn(f"'{path}' ({human_size(size)}) is pushed as plain git content, not a pointer (filter=mlx)")
    if found:
        ui.warn(
            "to store such files with gitmlx: 'git add --renormalize -- PATH', commit and push again "
            "('git mlx fsck --pointers' lists them)"
        )


def run(*, remote_name: str, remote_url: str, stdin: TextIO | None = None, quiet: bool = False) -> int:
    ctx = RepoContext()
    include, exclude = parse_updates(stdin or sys.stdin)
    if not include:
        return 0
    git_remote = remote_name if remote_name in ctx.git_remotes() else None
    excludes = known_commits(ctx, exclude) + ([f"--remotes={git_remote}"] if git_remote else [])
    needs = actions.push_needs(ctx, include, excludes, unfiltered=True)
    warn_raw_files(needs.unfiltered)
    if not needs.files:
        return 0
    remote = ctx.open_remote(git_remote, git_url=remote_url)
    result = actions.push(ctx, remote, needs, trust_record=True, quiet=quiet)
    if not result.ok:
        raise actions.push_refused(result, needs, remote)
    return 0
