"""gitmlx.format.layout: keys on a remote (format 1) and the format marker."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.errors import RemoteError
from gitmlx.format import layout

OID = hashlib.sha256(b"x").hexdigest()


def test_manifest_key_is_sharded() -> None:
    assert layout.manifest_key(OID) == f"manifests/{OID[0:2]}/{OID[2:4]}/{OID}"


def test_pack_key_is_sharded() -> None:
    assert layout.pack_key(OID) == f"packs/{OID[0:2]}/{OID}.pack"


@pytest.mark.parametrize("oid", ["", "../x", OID.upper(), OID[:63], OID + "a", OID[:32] + "/" + OID[33:], "g" * 64])
def test_keys_refuse_invalid_names(oid: str) -> None:
    with pytest.raises(ValueError):
        layout.manifest_key(oid)
    with pytest.raises(ValueError):
        layout.pack_key(oid)


def test_keys_round_trip() -> None:
    assert layout.oid_from_manifest_key(layout.manifest_key(OID)) == OID
    assert layout.pack_id_from_key(layout.pack_key(OID)) == OID


@pytest.mark.parametrize(
    "key",
    ["manifests/aa/bb/" + OID, "packs/" + OID + ".pack", "tmp/x", f"manifests/{OID[:2]}/{OID[2:4]}/{OID}.bak", ""],
)
def test_foreign_keys_name_nothing(key: str) -> None:
    assert layout.oid_from_manifest_key(key) is None or layout.manifest_key(layout.oid_from_manifest_key(key)) == key
    if key != layout.manifest_key(OID):
        assert layout.oid_from_manifest_key(key) is None


@given(st.text(max_size=200))
def test_key_parsers_never_raise(key: str) -> None:
    layout.oid_from_manifest_key(key)
    layout.pack_id_from_key(key)


def test_format_marker_round_trips() -> None:
    layout.check_format(layout.format_document(), "somewhere")


@pytest.mark.parametrize("doc", [json.dumps({"format": 3}).encode(), b"{", b"[]", b"\xff", json.dumps({}).encode()])
def test_unknown_or_broken_format_is_refused(doc: bytes) -> None:
    with pytest.raises(RemoteError) as caught:
        layout.check_format(doc, "s3://b/p")
    assert "s3://b/p" in caught.value.message
    assert caught.value.hint
