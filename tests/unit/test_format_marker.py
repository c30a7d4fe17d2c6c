"""The remote's format marker: only an exact `"format": 1` is format 1, anything else is
one clear RemoteError, and downloads read the marker too (once per remote and process)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.errors import RemoteError
from gitmlx.format import layout
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.transfer import common
from gitmlx.transfer.common import check_format
from gitmlx.transfer.download import download
from gitmlx.transfer.upload import upload


@pytest.mark.parametrize(
    "marker",
    [
        b'{"format": true}',
        b'{"format": 1.0}',
        b'{"format": "1"}',
        b'{"format": 3}',
        b'{"format": 2.0}',
        b'{"tool": "gitmlx"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"format": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b"\xff\xfe",
        b"",
    ],
)
def test_a_marker_that_is_not_exactly_format_1_or_2_is_refused_by_name(marker: bytes) -> None:
    with pytest.raises(RemoteError, match="remote 'r'"):
        layout.check_format(marker, "r")


def test_the_marker_gitmlx_writes_is_accepted() -> None:
    layout.check_format(layout.format_document(), "r")


@given(st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
def test_any_marker_bytes_are_accepted_or_refused_by_name(marker: bytes) -> None:
    try:
        layout.check_format(marker, "r")
    except RemoteError:
        return
    assert json.loads(marker)["format"] in (1, 2)


def test_a_folder_where_the_marker_belongs_is_a_remote_error(tmp_path: Path) -> None:
    remote = LocalRemote(tmp_path / "remote")
    (remote.root / layout.FORMAT_KEY).mkdir(parents=True)
    with pytest.raises(RemoteError, match="cannot read"):
        check_format(remote, create=True, tmp_dir=tmp_path / "tmp")


def test_a_download_refuses_a_remote_of_an_unknown_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Store(tmp_path / "source")
    pointer = source.insert_stream(io.BytesIO(random.Random(5).randbytes(40_000)))
    remote = LocalRemote(tmp_path / "remote")
    assert upload(source, remote, [pointer]).ok
    marker = remote.root / layout.FORMAT_KEY
    marker.chmod(0o644)
    marker.write_bytes(b'{"format": 3, "tool": "gitmlx"}\n')
    monkeypatch.setattr(common, "_READABLE", set())  # a new process: the upload's check is gone
    victim = Store(tmp_path / "victim")
    result = download(victim, remote, [pointer])
    assert not result.ok
    ((_, message),) = result.failed.values()
    assert "uses gitmlx remote format 3" in message
    assert not victim.has(pointer.oid)
