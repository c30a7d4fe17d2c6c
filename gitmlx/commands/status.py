"""`git mlx status [--json]`: artifacts staged, modified in the work tree, and not yet pushed.

The lists are computed first, then shown as text or as one JSON document
(docs/json-output.md)."""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.context import RepoContext
from gitmlx.format.sizes import human_size
from gitmlx.git import scan
from gitmlx.git.plumbing import run_git

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _changed(ctx: RepoContext, args: list[str]) -> set[str]:
    out = run_git(["diff", *args, "--name-only", "-z"], cwd=ctx.top, check=False)
    return {p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p}


def run(*, as_json: bool = False) -> int:
    ctx = RepoContext()
    has_head = _has_head(ctx)
    index = {f.path: f for f in scan.pointers_in_index(ctx.top)}
    # Before the first commit everything in the index is staged: diff against the empty tree.
    base = "HEAD" if has_head else EMPTY_TREE
    # A bare repository has no index to stage into: `diff --cached` would list every file.
    cached = set() if ctx.paths.work_tree is None else _changed(ctx, ["--cached", base])
    # HEAD's artifacts matter only for what the index no longer has (staged deletions);
    # only those are kept, and only the staged ones of the index: with 100,000 artifacts,
    # holding all of them twice while `unpushed` scans HEAD again cost ~100 MiB.
    gone = cached.difference(index)
    head = {f.path: f for f in scan.pointers_in_tree(ctx.top, "HEAD") if f.path in gone} if gone and has_head else {}
    staged = sorted(p for p in cached if p in index or p in head)
    modified = sorted(p for p in _changed(ctx, []) if p in index)
    index = {p: index[p] for p in staged if p in index}
    del cached, gone
    git_remote = ctx.default_git_remote()
    found = actions.unpushed(ctx, git_remote)
    unpushed = found.files
    if found.unasked:
        ui.warn(f"could not ask the artifact remote ({found.unasked}); 'not pushed' lists what git's refs say")
    if found.not_checked:
        ui.note(
            f"{found.not_checked} object(s) of HEAD were not checked on the artifact remote (only "
            f"{actions.STATUS_ASK_LIMIT} are, per run); 'git mlx push' checks them all"
        )
    if as_json:
        _show_json(staged, modified, unpushed, index, git_remote)
        return 0

    def show(title: str, rows: list[str]) -> None:
        ui.info(f"{title}:")
        for row in rows or ["(none)"]:
            ui.info(f"\t{row}")
        ui.info("")

    show("Artifacts staged for commit", [f"{p} ({_describe(index.get(p) or head.get(p))})" for p in staged])
    show("Artifacts modified, not staged", modified)
    show(
        f"Artifacts committed but not pushed{f' to {git_remote}' if git_remote else ''}",
        [f"{f.path} ({_describe(f)})" for f in sorted(unpushed, key=lambda f: f.path)],
    )
    return 0


def _show_json(
    staged: list[str],
    modified: list[str],
    unpushed: list[scan.TrackedFile],
    index: dict[str, scan.TrackedFile],
    git_remote: str | None,
) -> None:
    def artifact(path: str, tracked: scan.TrackedFile | None) -> dict[str, object]:
        """A deleted artifact (staged for deletion) has no oid or size."""
        pointer = tracked.pointer if tracked is not None else None
        return {"path": path, "oid": pointer.oid if pointer else None, "size": pointer.size if pointer else None}

    ui.json_document(
        "status",
        {
            "git_remote": git_remote,
            "staged": [artifact(p, index.get(p)) for p in staged],
            "modified": [{"path": p} for p in modified],
            "unpushed": [artifact(f.path, f) for f in sorted(unpushed, key=lambda f: f.path)],
        },
    )


def _describe(tracked: scan.TrackedFile | None) -> str:
    if tracked is None:
        return "deleted"
    return f"{tracked.pointer.short_oid}, {human_size(tracked.pointer.size)}"


def _has_head(ctx: RepoContext) -> bool:
    return bool(run_git(["rev-parse", "-q", "--verify", "HEAD"], cwd=ctx.top, check=False).strip())
