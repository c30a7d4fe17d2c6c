"""A format 1 remote written by an earlier gitmlx (the checked-in fixture, see
tests/fixtures/format1/README.md) is read by this one, byte for byte, and stays format 1
when this one pushes to it.

Nothing here depends on the format a new remote gets: the remote is the fixture's, and the
tests assert what becomes of it.
"""

from __future__ import annotations

from pathlib import Path

from tests.spec_reader import reader
from tests.support import format1_fixture as f1
from tests.support.commands import git
from tests.support.repos import clone
from tests.support.sealed import Sealed

KIB = 1024


def test_clone_restores_every_commit_and_fsck_is_clean(sealed: Sealed) -> None:
    expected = f1.expected()
    bare = f1.unpack(sealed.root)
    work = sealed.root / "work"
    clone(bare, work)
    f1.assert_restores(work, expected["commits"])
    f1.assert_remote_fsck_clean(work, expected["commits"][-1])
    assert f1.directory_keys(bare / "mlx") == expected["remote_keys"], "reading changed the remote"


def test_push_keeps_the_remote_format1_and_a_fresh_clone_reads_old_and_new(sealed: Sealed) -> None:
    expected = f1.expected()
    bare = f1.unpack(sealed.root)
    root = bare / "mlx"
    work = sealed.root / "work"
    clone(bare, work)
    v3, new = f1.commit_next_version(work, expected)
    git("push", "-q", "origin", "main", cwd=work)

    oids = {name: f1.sha256(data) for name, data in new.items()}
    f1.assert_stays_format1(expected["remote_keys"], f1.directory_keys(root), oids.values())
    for name, data in new.items():  # the spec's format 1 reader reads what was written
        assert reader.read_object(root, oids[name], len(data)) == data, name
    fresh = sealed.root / "fresh"
    clone(bare, fresh)
    f1.assert_restores(fresh, [v3])  # v3 names objects of v1, of v2 and its own


def test_fixture_holds_every_format1_feature(tmp_path: Path) -> None:
    """The fixture shows each feature a format 1 reader must handle (so the tests above
    exercise them all), and its keys are the bytes expected.json records."""
    expected = f1.expected()
    root = f1.unpack(tmp_path) / "mlx"
    keys = f1.directory_keys(root)
    assert keys == expected["remote_keys"]
    shown = f1.features(keys, lambda key: (root / key).read_bytes())
    assert shown == expected["features"]
    assert all(shown[name] for name in f1.FEATURES), shown
    assert f1.ARCHIVE.stat().st_size < 1024 * KIB
