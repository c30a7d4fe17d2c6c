"""pygit2 or git processes? The three jobs the design brief named for pygit2, timed both ways
on one repository of 20,000 files (400 of them gitmlx pointers), plus pygit2's import.

* read at a revision: what `gitmlx.open(path, rev=...)` asks first (`scan.blob_at`: the
  blob at REV:PATH, its pointer, and whether that commit's attributes track it), for 50
  paths one by one; and the same 400 pointer blobs read in bulk (`scan.read_pointers`,
  one `git cat-file --batch`) vs pygit2 lookups;
* tree walk: the 20,000 entries of HEAD with their sizes (`git ls-tree -r -l`, what
  `scan.pointers_in_tree` parses), and all of `pointers_in_tree` (walk, read the small
  blobs, keep the pointers HEAD's attributes track) vs the same in pygit2;
* attributes: the `filter` attribute of 20,000 paths (`git check-attr --stdin`, from the
  work tree and from HEAD's tree) vs `Repository.get_attr` per path;
* import: `python -c "import pygit2"` less `python -c pass`, vs one `git rev-parse`.

    pip install pygit2 && python bench/pygit2_probe.py [--reps 5]

Prints the median of --reps runs of each (ms). pygit2 is not a gitmlx dependency: install
it into the virtualenv that runs this probe only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitmlx.format.pointer import MAX_POINTER_SIZE, parse  # noqa: E402
from gitmlx.git import attributes, scan  # noqa: E402

FILES, DIRS, POINTER_EVERY = 20_000, 100, 50
ATTR_FLAG_INCLUDE_COMMIT = 1 << 4  # libgit2 GIT_ATTR_CHECK_INCLUDE_COMMIT


def make_repo(root: Path) -> tuple[Path, list[str], list[str]]:
    """20,000 files in 100 folders; every 50th a pointer under `*.bin filter=mlx`. Built with
    fast-import (no filter runs), committed, and checked out."""
    repo = root / "repo"
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(root)}
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    paths, pointers, commands = [], [], []
    commands.append(_blob(".gitattributes", b"*.bin filter=mlx diff=mlx merge=mlx -text\n*.txt text\n"))
    for i in range(FILES):
        if i % POINTER_EVERY == 0:
            path = f"d{i % DIRS:03}/model-{i:05}.bin"
            oid = f"{i:064x}"
            data = f"version https://gitmlx.dev/spec/v1\noid sha256:{oid}\nsize {i * 1000}\n".encode()
            pointers.append(path)
        else:
            path = f"d{i % DIRS:03}/sub{i % 7}/file-{i:05}.txt"
            data = f"row {i}\n".encode() * 3
        paths.append(path)
        commands.append(_blob(path, data))
    stream = b"commit refs/heads/main\ncommitter b <b@example.invalid> 1700000000 +0000\ndata 4\nbig\n"
    stream += b"".join(commands) + b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], input=stream, cwd=repo, check=True, env=env)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=repo, check=True, env=env)
    return repo, paths, pointers


def _blob(path: str, data: bytes) -> bytes:
    return b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data)


def timed(fn: Callable[[], object], reps: int) -> float:
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    import pygit2

    with tempfile.TemporaryDirectory(prefix="gitmlx-pygit2-") as tmp:
        repo_dir, paths, pointer_paths = make_repo(Path(tmp))
        os.chdir(repo_dir)
        os.environ.update({"GIT_CONFIG_NOSYSTEM": "1", "HOME": tmp})
        repo = pygit2.Repository(str(repo_dir))
        head = repo.revparse_single("HEAD")
        rows = []

        def row(job: str, ours: Callable[[], object], theirs: Callable[[], object]) -> None:
            a, b = ours(), theirs()
            if a != b:
                raise SystemExit(f"{job}: the two answers differ")
            rows.append((job, timed(ours, args.reps), timed(theirs, args.reps)))

        few = pointer_paths[:50]
        row(
            "blob_at(HEAD, path) x 50",
            lambda: [scan.blob_at(repo_dir, "HEAD", p).pointer for p in few],
            lambda: [_blob_at_pygit2(repo, head, p) for p in few],
        )
        shas = [repo.revparse_single(f"HEAD:{p}").id for p in pointer_paths]
        row(
            "400 pointer blobs, bulk",
            lambda: scan.read_pointers(repo_dir, [str(s) for s in shas]),
            lambda: {str(s): parse(repo[s].data) for s in shas},
        )
        row(
            "tree walk, 20,001 entries + sizes",
            lambda: _ls_tree(repo_dir),
            lambda: _walk(repo, head.tree, "", with_size=True),
        )
        row(
            "pointers_in_tree(HEAD)",
            lambda: sorted(f.path for f in scan.pointers_in_tree(repo_dir, "HEAD")),
            lambda: sorted(_pointers_pygit2(repo, head)),
        )
        row(
            "filter attr, 20,000 paths, work tree",
            lambda: attributes.filters(repo_dir, paths),
            lambda: {p: _attr(repo.get_attr(p, "filter")) for p in paths},
        )
        row(
            "filter attr, 20,000 paths, HEAD's tree",
            lambda: attributes.filters(repo_dir, paths, source="HEAD"),
            lambda: {p: _attr(repo.get_attr(p, "filter", ATTR_FLAG_INCLUDE_COMMIT, head.id)) for p in paths},
        )
    print(f"pygit2 {pygit2.__version__} (libgit2 {pygit2.LIBGIT2_VERSION}), git {_git_version()}, reps {args.reps}")
    print(f"{'job':<40} {'git (ms)':>10} {'pygit2 (ms)':>12}")
    for job, ours, theirs in rows:
        print(f"{job:<40} {ours:>10.1f} {theirs:>12.1f}")
    base = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 11)
    imp = timed(lambda: subprocess.run([sys.executable, "-c", "import pygit2"], check=True), 11)
    spawn = timed(lambda: subprocess.run(["git", "rev-parse", "--git-dir"], capture_output=True), 11)
    print(f"import pygit2: {imp - base:.1f} ms over a bare interpreter ({base:.1f} ms)")
    print(f"one git process: {spawn:.1f} ms")


def _ls_tree(cwd: Path) -> list[tuple[str, str, int]]:
    """`git ls-tree -r -l -z HEAD` parsed as scan.pointers_in_tree parses it."""
    out = subprocess.run(["git", "ls-tree", "-r", "-l", "-z", "HEAD"], cwd=cwd, capture_output=True, check=True)
    found = []
    for record in out.stdout.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            _, _, sha, size = meta.decode().split()
            found.append((path.decode(), sha, int(size)))
    return found


def _attr(value: object) -> str:
    """pygit2's answer in check-attr's words."""
    return {None: "unspecified", True: "set", False: "unset"}.get(value, value)  # type: ignore[arg-type]


def _blob_at_pygit2(repo: object, head: object, path: str) -> object:
    entry = head.tree[path]  # type: ignore[attr-defined]
    blob = repo[entry.id]  # type: ignore[index]
    pointer = parse(blob.data) if blob.size < MAX_POINTER_SIZE else None
    flags, commit = ATTR_FLAG_INCLUDE_COMMIT, head.id  # type: ignore[attr-defined]
    if pointer is not None and repo.get_attr(path, "filter", flags, commit) != "mlx":  # type: ignore[attr-defined]
        pointer = None
    return pointer


def _walk(repo: object, tree: object, prefix: str, with_size: bool) -> list[tuple[str, str, int]]:
    found = []
    for entry in tree:  # type: ignore[attr-defined]
        path = prefix + entry.name
        if entry.type_str == "tree":
            found += _walk(repo, repo[entry.id], path + "/", with_size)  # type: ignore[index]
        else:
            size = repo[entry.id].size if with_size else -1  # type: ignore[index]
            found.append((path, str(entry.id), size))
    return found


def _pointers_pygit2(repo: object, head: object) -> list[str]:
    keep = []
    for path, oid, size in _walk(repo, head.tree, "", with_size=True):  # type: ignore[attr-defined]
        small = size < MAX_POINTER_SIZE and parse(repo[oid].data) is not None  # type: ignore[index]
        if small and repo.get_attr(path, "filter", ATTR_FLAG_INCLUDE_COMMIT, head.id) == "mlx":  # type: ignore[attr-defined]
            keep.append(path)
    return keep


def _git_version() -> str:
    return subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[-1]


if __name__ == "__main__":
    main()
