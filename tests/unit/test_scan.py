"""gitmlx.git.scan and gitmlx.git.attributes: a pointer blob is an artifact only in a
regular file whose path has gitmlx's filter, judged with a constant number of git
processes whatever the number of files.

Against a fake `run_git` that answers from in-memory objects, trees and attributes: no
subprocess.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from gitmlx import actions
from gitmlx.format.pointer import LFS_VERSION, Pointer
from gitmlx.git import attributes, batch, scan
from gitmlx.git.packed_files import PackedFiles
from gitmlx.git.plumbing import GitError

TOP = Path("/repo")
WORK = "<work tree>"


def _sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _pointer(seed: str, size: int = 1000) -> Pointer:
    return Pointer(hashlib.sha256(seed.encode()).hexdigest(), size)


def _change(mode: str, sha: str, path: str) -> bytes:
    return f":000000 {mode} {'0' * 40} {sha} A".encode() + b"\0" + path.encode() + b"\0"


@dataclass
class FakeGit:
    """Objects, trees, an index and attributes; answers the git commands scan.py runs."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # rev -> (mode, sha, path)
    index: list[tuple[str, str, str]] = field(default_factory=list)
    changes: bytes = b""  # diff-tree output for the range
    commits: bytes = b"c1 c0\n"  # rev-list --parents output
    objects: bytes = b""  # rev-list --objects output
    attrs: dict[str, dict[str, str]] = field(default_factory=dict)  # source -> path -> filter
    calls: list[tuple[str, ...]] = field(default_factory=list)
    _read: dict[str, str] = field(default_factory=dict)  # temporary index file -> tree read into it

    def blob(self, data: bytes) -> str:
        sha = _sha(data)
        self.blobs[sha] = data
        return sha

    def __call__(
        self,
        args: Sequence[str],
        cwd: Path | str | None = None,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> bytes:
        args = list(args)
        self.calls.append(tuple(args))
        name = args[0]
        if name == "cat-file" and args[1].startswith("--batch-check"):
            assert input is not None
            lines = []
            for sha in input.decode().split():
                data = self.blobs.get(sha)
                lines.append(f"{sha} missing" if data is None else f"{sha} blob {len(data)}")
            return ("\n".join(lines) + "\n").encode()
        if name == "cat-file":
            assert input is not None
            out = b""
            for sha in input.decode().split():
                data = self.blobs[sha]
                out += f"{sha} blob {len(data)}\n".encode() + data + b"\n"
            return out
        if name == "ls-tree":
            rev = args[args.index("--full-tree") + 1]
            return b"".join(
                f"{mode} blob {sha} {len(self.blobs[sha]):>7}\t{path}".encode() + b"\0"
                for mode, sha, path in self.trees.get(rev, [])
            )
        if name == "ls-files":
            return b"".join(f"{mode} {sha} 0\t{path}".encode() + b"\0" for mode, sha, path in self.index)
        if name == "rev-list" and "--objects" in args:
            return self.objects
        if name == "rev-list":
            return self.commits
        if name == "diff-tree":
            return self.changes
        if name == "read-tree":
            assert env is not None and os.path.isabs(env["GIT_INDEX_FILE"])
            if args[1] not in self.trees and args[1] not in self.attrs:
                raise GitError(f"git read-tree failed: not a tree object: {args[1]}")
            self._read[env["GIT_INDEX_FILE"]] = args[1]
            return b""
        if name == "check-attr":
            assert args[-3:] == ["-z", "--stdin", "filter"] and input is not None
            if "--cached" in args:
                assert env is not None
                source = self._read[env["GIT_INDEX_FILE"]]
            else:
                assert env is None or "GIT_INDEX_FILE" not in env
                source = WORK
            paths = input.split(b"\0")[:-1]
            values = self.attrs.get(source, {})
            return b"".join(p + b"\0filter\0" + values.get(p.decode(), "unspecified").encode() + b"\0" for p in paths)
        raise AssertionError(f"unexpected git {args}")

    def count(self, name: str) -> int:
        return sum(1 for call in self.calls if call[0] == name)

    def output(
        self, args: Sequence[str], cwd: Path | str | None = None, input: bytes | None = None, check: bool = True
    ) -> contextlib.AbstractContextManager[io.BytesIO]:
        """Stands for plumbing.GitOutput: the same answers, read as a stream."""
        return contextlib.nullcontext(io.BytesIO(self(args, cwd, input, check=check)))


@pytest.fixture
def git(monkeypatch: pytest.MonkeyPatch) -> FakeGit:
    fake = FakeGit()
    monkeypatch.setattr(scan, "run_git", fake)
    monkeypatch.setattr(attributes, "run_git", fake)
    monkeypatch.setattr(scan, "GitOutput", fake.output)
    monkeypatch.setattr(batch, "GitOutput", fake.output)
    return fake


# --- trees and the index -------------------------------------------------------------


def test_a_tree_keeps_pointers_only_in_paths_its_own_attributes_track(git: FakeGit) -> None:
    text = _pointer("real").encode()
    sha = git.blob(text)
    git.trees["v1"] = [("100644", sha, "docs/example.txt"), ("100755", sha, "real.bin")]
    git.attrs["v1"] = {"real.bin": "mlx"}
    git.attrs[WORK] = {"docs/example.txt": "mlx"}  # the work tree says otherwise: not asked

    found = scan.pointers_in_tree(TOP, "v1")

    assert [(f.path, f.mode) for f in found] == [("real.bin", "100755")]
    assert ("read-tree", "v1") in git.calls
    assert [c for c in git.calls if c[0] == "check-attr"] == [("check-attr", "--cached", "-z", "--stdin", "filter")]
    assert not any(os.path.exists(os.path.dirname(index)) for index in git._read)  # the temporary index is gone


def test_the_index_is_judged_by_the_work_tree_attributes(git: FakeGit) -> None:
    sha = git.blob(_pointer("real").encode())
    git.index = [("100644", sha, "real.bin"), ("100644", sha, "docs/example.txt")]
    git.attrs[WORK] = {"real.bin": "mlx"}

    found = scan.pointers_in_index(TOP)

    assert [f.path for f in found] == ["real.bin"]
    assert git.count("read-tree") == 0
    assert ("check-attr", "-z", "--stdin", "filter") in git.calls


@pytest.mark.parametrize(
    ("value", "tracked"),
    [("mlx", True), ("lfs", True), ("unspecified", False), ("set", False), ("unset", False), ("mlx-not", False)],
)
def test_only_gitmlx_and_git_lfs_filters_make_an_artifact(git: FakeGit, value: str, tracked: bool) -> None:
    sha = git.blob(_pointer("real").encode())
    git.index = [("100644", sha, "a.bin")]
    git.attrs[WORK] = {"a.bin": value}

    assert bool(scan.pointers_in_index(TOP)) is tracked


def test_a_git_lfs_pointer_under_filter_lfs_is_an_artifact(git: FakeGit) -> None:
    """After `git mlx migrate from-lfs`, old commits say filter=lfs and hold Git LFS pointers."""
    lfs = _pointer("old").encode().replace(b"https://gitmlx.dev/spec/v1", LFS_VERSION.encode())
    sha = git.blob(lfs)
    git.trees["old"] = [("100644", sha, "a.bin")]
    git.attrs["old"] = {"a.bin": "lfs"}

    [found] = scan.pointers_in_tree(TOP, "old")

    assert found.pointer.is_lfs


def test_no_pointer_no_attribute_question(git: FakeGit) -> None:
    sha = git.blob(b"plain text\n")
    git.trees["v1"] = [("100644", sha, "README")]
    git.index = [("100644", sha, "README")]

    assert scan.pointers_in_tree(TOP, "v1") == []
    assert scan.pointers_in_index(TOP) == []
    assert git.count("check-attr") == 0 and git.count("read-tree") == 0


def test_tracked_only_false_lists_every_pointer_blob_without_asking(git: FakeGit) -> None:
    sha = git.blob(_pointer("real").encode())
    git.index = [("100644", sha, "docs/example.txt")]
    git.trees["v1"] = list(git.index)

    assert [f.path for f in scan.pointers_in_index(TOP, tracked_only=False)] == ["docs/example.txt"]
    assert [f.path for f in scan.pointers_in_tree(TOP, "v1", tracked_only=False)] == ["docs/example.txt"]
    assert git.count("check-attr") == 0


def test_a_source_git_cannot_read_as_a_tree_falls_back_to_the_work_tree(git: FakeGit) -> None:
    sha = git.blob(_pointer("real").encode())
    git.changes = _change("100644", sha, "a.bin")
    git.attrs[WORK] = {"a.bin": "mlx"}

    found = scan.pointers_in_range(TOP, ["--all"], tracked_at=["HEAD"])  # an unborn HEAD

    assert [f.path for f in found] == ["a.bin"]
    assert ("check-attr", "-z", "--stdin", "filter") in git.calls


# --- ranges --------------------------------------------------------------------------


def test_a_range_reports_a_blob_under_its_tracked_path_when_an_untracked_copy_comes_first(git: FakeGit) -> None:
    sha = git.blob(_pointer("m").encode())
    git.changes = _change("100644", sha, "docs/m-pointer.txt") + _change("100644", sha, "models/m.bin")
    git.attrs["tip"] = {"models/m.bin": "mlx"}

    found = scan.pointers_in_range(TOP, ["tip"], ["--remotes=origin"], tracked_at=["tip"])

    assert [f.path for f in found] == ["models/m.bin"]
    assert ("rev-list", "--parents", "tip", "--not", "--remotes=origin") in git.calls


def test_a_range_never_takes_a_symlink_or_a_submodule_for_an_artifact(git: FakeGit) -> None:
    link = git.blob(_pointer("ghost", 5).encode())
    exe = git.blob(_pointer("tool").encode())
    git.changes = (
        _change("120000", link, "odd.bin") + _change("160000", "c" * 40, "sub.bin") + _change("100755", exe, "tool.bin")
    )
    git.attrs["tip"] = {"odd.bin": "mlx", "sub.bin": "mlx", "tool.bin": "mlx"}

    found = scan.range_pointers(TOP, ["tip"], [], ["tip"])

    assert [(f.path, f.mode) for f in found.artifacts] == [("tool.bin", "100755")]
    assert [f.path for f in found.elsewhere] == ["odd.bin"]  # a gitlink's commit is no blob
    assert scan.pointers_in_range(TOP, ["tip"], tracked_at=["tip"]) == found.artifacts


def test_pointer_text_elsewhere_is_uploaded_only_when_the_store_has_its_object(git: FakeGit) -> None:
    real, ghost, old = _pointer("real"), _pointer("ghost"), _pointer("old")
    shas = [git.blob(p.encode()) for p in (real, ghost, old)]
    git.changes = (
        _change("100644", shas[0], "docs/copy.txt")  # a copy of an artifact: an artifact
        + _change("100644", shas[0], "real.bin")
        + _change("100644", shas[1], "docs/ghost.txt")  # an example naming nothing
        + _change("100644", shas[2], "old.pt")  # tracked by an older .gitattributes
    )
    git.attrs["tip"] = {"real.bin": "mlx"}
    store = SimpleNamespace(has=lambda oid: oid in {real.oid, old.oid})

    found = scan.range_pointers(TOP, ["tip"], ["--remotes=origin"], ["tip"])
    files = actions.range_uploads(SimpleNamespace(store=store), found)  # type: ignore[arg-type]

    assert [f.path for f in found.artifacts] == ["real.bin"]
    assert [f.path for f in found.elsewhere] == ["docs/ghost.txt", "old.pt"]
    assert [f.path for f in files] == ["real.bin", "old.pt"]


def test_a_range_counts_a_path_that_one_of_the_pushed_commits_tracks(git: FakeGit) -> None:
    a, b, c = (git.blob(_pointer(s).encode()) for s in "abc")
    git.changes = _change("100644", a, "a.bin") + _change("100644", b, "b.ckpt") + _change("100644", c, "c.txt")
    git.attrs["main"] = {"a.bin": "mlx"}
    git.attrs["feature"] = {"a.bin": "mlx", "b.ckpt": "mlx"}

    found = scan.pointers_in_range(TOP, ["main", "feature"], tracked_at=["main", "feature", "main"])

    assert sorted(f.path for f in found) == ["a.bin", "b.ckpt"]
    asked = [call for call in git.calls if call[0] == "read-tree"]
    assert asked == [("read-tree", "main"), ("read-tree", "feature")]


def test_git_processes_do_not_grow_with_the_number_of_files(git: FakeGit) -> None:
    changes = []
    for i in range(2000):
        sha = git.blob(_pointer(str(i)).encode())
        changes.append(_change("100644", sha, f"shard{i % 20:02d}/part-{i:04d}.bin"))
        git.attrs.setdefault("tip", {})[f"shard{i % 20:02d}/part-{i:04d}.bin"] = "mlx"
    git.changes = b"".join(changes) + _change("100644", git.blob(b"x" * 5000), "big.txt")

    found = scan.pointers_in_range(TOP, ["tip"], ["old"], tracked_at=["tip"])

    assert len(found) == 2000
    assert sorted(call[0] for call in git.calls) == [
        "cat-file",  # --batch-check: sizes
        "cat-file",  # --batch: the small blobs
        "check-attr",
        "diff-tree",
        "read-tree",
        "rev-list",
    ]


def test_an_empty_range_runs_nothing_after_rev_list(git: FakeGit) -> None:
    git.commits = b""

    assert scan.pointers_in_range(TOP, ["tip"], ["tip"], tracked_at=["tip"]) == []
    assert [call[0] for call in git.calls] == ["rev-list"]


def test_a_keep_set_range_lists_every_pointer_blob_rev_list_names(git: FakeGit) -> None:
    sha = git.blob(_pointer("real").encode())
    link = git.blob(_pointer("ghost", 5).encode())
    git.objects = f"c1\nt1 \n{sha} docs/example.txt\n{link} odd.bin\n".encode()

    found = scan.pointers_in_range(TOP, ["--all"], tracked_at=None)

    assert sorted(f.path for f in found) == ["docs/example.txt", "odd.bin"]
    assert git.count("check-attr") == 0 and git.count("diff-tree") == 0


# --- parsing -------------------------------------------------------------------------


def test_changed_entries_keep_each_change_once_and_leave_deletions_out() -> None:
    a, b = "a" * 40, "b" * 40
    out = (
        _change("100644", a, "x.bin")
        + f":100644 000000 {a} {'0' * 40} D".encode()
        + b"\0gone.bin\0"
        + _change("100644", a, "x.bin")  # the same change from another commit
        + _change("100644", b, ":odd name\nwith newline")
    )

    assert scan.changed_entries(out) == [("100644", a, "x.bin"), ("100644", b, ":odd name\nwith newline")]


def test_changed_entries_keep_a_path_that_is_not_utf8() -> None:
    out = f":000000 100644 {'0' * 40} {'a' * 40} A".encode() + b"\0caf\xe9.bin\0"

    [(_, _, path)] = scan.changed_entries(out)

    assert path.encode("utf-8", "surrogateescape") == b"caf\xe9.bin"


def test_first_parent_pairs_drop_the_other_parents_of_a_merge() -> None:
    assert scan.first_parent_pairs(b"m p1 p2 p3\nc p\nroot\n") == b"m p1\nc p\nroot\n"


def test_check_attr_answers_map_to_the_paths_asked_in_order() -> None:
    out = b"a b.bin\0filter\0mlx\0docs/x\0filter\0unspecified\0"

    assert attributes.parse_check_attr(out, ["a b.bin", "docs/x"]) == {"a b.bin": "mlx", "docs/x": "unspecified"}
    with pytest.raises(GitError):
        attributes.parse_check_attr(out, ["a b.bin"])


def test_packed_files_give_back_each_file_as_it_was_added() -> None:
    files = [
        scan.TrackedFile(f"d{i // 7}/f {i}.bin", _pointer(str(i), i), "100755" if i % 3 else "100644")
        for i in range(2 * PackedFiles.BLOCK + 5)
    ]
    packed = PackedFiles()
    packed.extend(files[:10])
    packed.extend(files[10:])

    assert len(packed) == len(files)
    assert list(packed) == files
    assert [packed[i] for i in (0, PackedFiles.BLOCK, len(files) - 1, -1)] == [
        files[0],
        files[PackedFiles.BLOCK],
        files[-1],
        files[-1],
    ]
    assert packed.pointers == [f.pointer for f in files]
    with pytest.raises(IndexError):
        packed[len(files)]
