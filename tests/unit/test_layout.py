"""gitmlx.layout: object keys on a remote and back."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.layout import OBJECTS_PREFIX, object_key, oid_from_key

OID = hashlib.sha256(b"x").hexdigest()


def test_object_key_is_sharded() -> None:
    assert object_key(OID) == f"objects/{OID[0:2]}/{OID[2:4]}/{OID}"
    assert object_key(OID).startswith(OBJECTS_PREFIX)


@pytest.mark.parametrize("oid", ["", "../x", OID.upper(), OID[:63], OID + "a", OID[:32] + "/" + OID[33:], "g" * 64])
def test_object_key_refuses_invalid_oids(oid: str) -> None:
    with pytest.raises(ValueError):
        object_key(oid)


def test_oid_from_key_round_trip() -> None:
    assert oid_from_key(object_key(OID)) == OID


@pytest.mark.parametrize(
    "key",
    [
        "",
        OID,
        f"objects/{OID}",
        f"objects/{OID[0:2]}/{OID}",
        f"objects/{OID[0:2]}/{OID[2:4]}/{OID}.tmp",
        f"objects/{OID[0:2]}/{OID[2:4]}/{OID}/",
        f"objects/{OID[0:2]}/{OID[2:4]}/{OID.upper()}",
        f"objects/{OID[2:4]}/{OID[0:2]}/{OID}" if OID[0:2] != OID[2:4] else "objects/zz/zz/" + OID,
        f"objects/00/00/{OID}" if OID[0:4] != "0000" else f"objects/11/11/{OID}",
        f"objects/{OID[0:2]}/{OID[2:4]}/../{OID}",
        f"prefix/objects/{OID[0:2]}/{OID[2:4]}/{OID}",
        f"/objects/{OID[0:2]}/{OID[2:4]}/{OID}",
        f"Objects/{OID[0:2]}/{OID[2:4]}/{OID}",
        f"objects//{OID[0:2]}/{OID[2:4]}/{OID}",
        f"objects/{OID[0:2]}/{OID[2:4]}/{OID}\n",
        "objects/lock",
        "locks/push-1",
    ],
)
def test_oid_from_key_rejects_other_keys(key: str) -> None:
    assert oid_from_key(key) is None


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_round_trip_for_any_oid(oid: str) -> None:
    assert oid_from_key(object_key(oid)) == oid


@given(st.text(max_size=120))
def test_oid_from_key_never_raises_and_only_returns_canonical_keys(key: str) -> None:
    oid = oid_from_key(key)
    assert oid is None or object_key(oid) == key
