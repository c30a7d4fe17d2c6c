"""gitmlx.git.index_file against indexes written by the real git.

The repositories use a stand-in clean filter that turns any content into the text
"pointer", so a work-tree file can differ from its blob while being clean, as an
artifact does. After the stat data is recorded the filter is made to fail: a clean
`git status` then proves git trusted the recorded stat data and did not re-read the file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitmlx.git import index_file
from gitmlx.osutil import digests

POINTER = b"pointer\n"


def git(cwd: Path, *args: str, check: bool = True) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout


def make_repo(tmp_path: Path, *init_args: str) -> Path:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", *init_args, str(repo))
    git(repo, "config", "filter.p.clean", f"cat >/dev/null; printf '{POINTER.decode().strip()}\\n'")
    git(repo, "config", "filter.p.smudge", "cat")
    (repo / ".gitattributes").write_text("*.bin filter=p\n")
    for name in ("a.bin", "dir/b.bin", "dir/c.bin", "plain.txt"):
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_bytes(POINTER if name.endswith(".bin") else b"plain\n")
        os.utime(repo / name, (1_600_000_000, 1_600_000_000))  # not racily clean (see below)
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "pointers")
    return repo


def replace_content(repo: Path, names: list[str]) -> None:
    """New content, dated a minute ago: a file written in the same clock tick as the index
    is "racily clean" to git, which then re-reads it whatever the index says (git's rule,
    not gitmlx's; see the module docstring of index_file)."""
    for name in names:
        tmp = repo / (name + ".tmp")
        tmp.write_bytes(os.urandom(5000))
        os.replace(tmp, repo / name)
        past = os.stat(repo / name).st_mtime_ns - 60 * 10**9
        os.utime(repo / name, ns=(past, past))


def break_filter(repo: Path) -> None:
    git(repo, "config", "filter.p.clean", "exit 1")
    git(repo, "config", "filter.p.required", "true")


def record(repo: Path, names: list[str], fmt: str = "sha1", report: bool = True) -> set[str]:
    wanted = {n: index_file.Wanted(frozenset({digests.git_blob_id(POINTER, fmt)}), os.lstat(repo / n)) for n in names}
    return index_file.record_stat(repo / ".git" / "index", wanted, fmt, report=report)


@pytest.mark.parametrize("version", ["2", "3", "4"])
def test_recorded_stat_data_makes_git_trust_the_file(tmp_path: Path, version: str) -> None:
    repo = make_repo(tmp_path)
    git(repo, "update-index", "--index-version", version)
    if version != "2":
        git(repo, "update-index", "--skip-worktree", "plain.txt")  # an entry with extended flags
    names = ["a.bin", "dir/b.bin", "dir/c.bin"]
    replace_content(repo, names)
    assert "a.bin" in git(repo, "diff-files", "--name-only")  # the size changed: modified

    assert record(repo, names) == set(names)

    break_filter(repo)
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "diff-files", "--name-only") == ""
    git(repo, "fsck", "--no-dangling")  # the rewritten index still verifies
    assert "size: 5000" in git(repo, "ls-files", "--debug", "a.bin").replace("\t", " ")


def test_sha256_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "--object-format=sha256")
    replace_content(repo, ["a.bin"])
    assert record(repo, ["a.bin"], "sha256") == {"a.bin"}
    break_filter(repo)
    assert git(repo, "status", "--porcelain") == ""


def test_an_entry_holding_another_blob_is_left_alone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    replace_content(repo, ["plain.txt"])
    wanted = {"plain.txt": index_file.Wanted(frozenset({digests.git_blob_id(POINTER)}), os.lstat(repo / "plain.txt"))}
    before = (repo / ".git" / "index").read_bytes()
    assert index_file.record_stat(repo / ".git" / "index", wanted) == set()
    assert (repo / ".git" / "index").read_bytes() == before
    assert not (repo / ".git" / "index.lock").exists()


def test_a_held_lock_is_respected(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    replace_content(repo, ["a.bin"])
    (repo / ".git" / "index.lock").write_bytes(b"")
    with pytest.raises(index_file.IndexLocked):
        record(repo, ["a.bin"])
    assert (repo / ".git" / "index.lock").exists()  # someone else's: not removed


def test_a_split_index_is_refused_untouched(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    git(repo, "update-index", "--split-index")
    replace_content(repo, ["a.bin"])
    before = (repo / ".git" / "index").read_bytes()
    with pytest.raises(ValueError):
        record(repo, ["a.bin"])
    assert (repo / ".git" / "index").read_bytes() == before
    assert not (repo / ".git" / "index.lock").exists()


def test_a_corrupt_index_is_refused_untouched(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    index = repo / ".git" / "index"
    data = bytearray(index.read_bytes())
    data[20] ^= 1
    index.write_bytes(bytes(data))
    replace_content(repo, ["a.bin"])
    with pytest.raises(ValueError):
        record(repo, ["a.bin"])
    assert index.read_bytes() == bytes(data)


def test_varint_matches_git() -> None:
    # git's varint.c (encode_varint) writes 127 as 7f, 128 as 80 00, 16511 as ff 7f, 16512 as 80 80 00.
    for encoded, value in [(b"\x7f", 127), (b"\x80\x00", 128), (b"\xff\x7f", 16511), (b"\x80\x80\x00", 16512)]:
        assert index_file._varint(encoded, 0) == (value, len(encoded))


def test_the_index_is_stamped_after_the_files_it_vouches_for(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    for trial in range(20):  # each time: content written, then the index, within a clock tick
        (repo / "a.bin").write_bytes(os.urandom(5000 + trial))
        assert record(repo, ["a.bin"]) == {"a.bin"}
        assert os.stat(repo / ".git" / "index").st_mtime_ns > os.stat(repo / "a.bin").st_mtime_ns
    # git built without USE_NSEC (Debian's) compares whole seconds, so a file written in
    # the index's second is still re-read once; the answer is the same pointer.
    assert git(repo, "status", "--porcelain") == ""


def test_recorded_sizes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    git(repo, "update-index", "--index-version", "4")
    sizes = index_file.recorded_sizes(repo / ".git" / "index")
    assert sizes == {".gitattributes": 15, "a.bin": 8, "dir/b.bin": 8, "dir/c.bin": 8, "plain.txt": 6}


def test_stat_data_is_recorded_as_well_without_the_paths_reported(tmp_path: Path) -> None:
    """The filter's index refresh asks for no paths back; the index is written all the same."""
    repo = make_repo(tmp_path)
    names = ["a.bin", "dir/b.bin"]
    replace_content(repo, names)

    assert record(repo, names, report=False) == set()

    break_filter(repo)
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "diff-files", "--name-only") == ""
