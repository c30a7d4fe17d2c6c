"""The reader written from docs/storage-format.md alone reads the format 1 remote an
earlier gitmlx wrote (tests/fixtures/format1/README.md): every object every commit
names, and the one no ref reaches, rebuilt and verified."""

from __future__ import annotations

from tests.spec_reader import reader
from tests.support import format1_fixture as f1
from tests.support.repos import blob_at, tracked_files
from tests.support.sealed import Sealed


def test_reader_from_the_spec_reads_every_object_of_the_format1_fixture(sealed: Sealed) -> None:
    expected = f1.expected()
    bare = f1.unpack(sealed.root)
    root = reader.default_root(bare)
    reader.check_marker(root)
    sizes: dict[str, int] = {}
    for commit in expected["commits"]:
        for path in tracked_files(bare, commit["id"]):
            if path == ".gitattributes":
                continue
            oid, size = reader.parse_pointer(blob_at(bare, f"{commit['id']}:{path}"))
            entry = commit["files"][path]
            assert (oid, size) == (entry["sha256"], entry["size"]), path
            sizes[oid] = size
    on_remote = {key.rsplit("/", 1)[1] for key in expected["remote_keys"] if f1.format1_kind(key) == "manifest"}
    assert on_remote == {*sizes, expected["unreachable_oid"]}
    for oid in sorted(on_remote):
        data = reader.read_object(root, oid, sizes.get(oid))
        assert reader.sha256(data) == oid
