"""The links a thin checkout keeps to its work-tree files (store/worktreelinks.py): made
only for the file that was placed, read only as chunk sources, dropped once the
work-tree name is gone."""

from __future__ import annotations

import os
from pathlib import Path

from gitmlx.store.worktreelinks import LINK_FROM, WorktreeLinks

OID = "ab" * 32


def placed_file(tmp_path: Path, size: int = LINK_FROM) -> tuple[Path, os.stat_result]:
    path = tmp_path / "model.bin"
    path.write_bytes(b"x" * size)
    return path, os.lstat(path)


def test_a_placed_file_is_linked_and_readable_as_a_chunk_source(tmp_path: Path) -> None:
    links = WorktreeLinks(tmp_path / "git")
    path, st = placed_file(tmp_path)
    links.add(OID, str(path), st)
    assert links.has(OID) and os.lstat(path).st_nlink == 2
    with links.open(OID) as f:
        assert f.read(3) == b"xxx"


def test_small_and_replaced_files_are_not_linked(tmp_path: Path) -> None:
    links = WorktreeLinks(tmp_path / "git")
    small, st = placed_file(tmp_path, LINK_FROM - 1)
    links.add(OID, str(small), st)
    assert not links.has(OID)
    path, st = placed_file(tmp_path)
    path.unlink()
    path.write_bytes(b"y" * LINK_FROM)  # another file under the name since it was placed
    os.utime(path, ns=(st.st_mtime_ns + 10**9, st.st_mtime_ns + 10**9))  # (maybe the same inode number)
    links.add(OID, str(path), st)
    assert not links.has(OID) and links.open(OID) is None


def test_sweep_drops_links_whose_work_tree_name_is_gone(tmp_path: Path) -> None:
    links = WorktreeLinks(tmp_path / "git")
    path, st = placed_file(tmp_path)
    links.add(OID, str(path), st)
    assert links.sweep() == 0 and links.has(OID)  # still checked out
    path.unlink()  # what git does before it writes the next version
    assert links.sweep() >= LINK_FROM and not links.has(OID)


def test_names_that_are_not_oids_are_refused(tmp_path: Path) -> None:
    links = WorktreeLinks(tmp_path / "git")
    assert not links.has("../etc/passwd") and links.open("../etc/passwd") is None
