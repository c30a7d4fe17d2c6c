"""Property tests for what a hostile repository, remote or peer can hand gitmlx's parsers:
pointers, pkt-line conversations, `.mlxconfig` files and manifests. No crash, no
traceback, only the documented errors, and exact round-trips where the input is valid.

tests/unit already holds the basic pointer and pkt-line properties (parse never raises,
encode/parse round-trips, the reader raises only PacketError/EOFError). Added here:
the parser checked against an independent reading of the spec, the filter-protocol loop
fed arbitrary conversations, `read_config` on arbitrary file contents (through the real
`git config`), and manifests with a valid checksum but hostile numbers.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gitmlx.config import SETTINGS, Config, parse_size
from gitmlx.errors import ConfigError, IntegrityError, MlxError
from gitmlx.format.manifest import ChunkRef, Manifest, decode
from gitmlx.format.pointer import KNOWN_VERSIONS, MAX_OBJECT_SIZE, Pointer, parse
from gitmlx.git import pktline
from gitmlx.git.filter_protocol import HandshakeError, serve
from gitmlx.git.plumbing import read_config
from gitmlx.store.objects import Store

# Each example of the config properties runs the real `git config`: fewer, slower examples.
GIT_EXAMPLES = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- pointers, against an independent reading of docs/pointer-format.md -------------------

SPEC = re.compile(
    rb"version (https://gitmlx\.dev/spec/v1|https://git-lfs\.github\.com/spec/v1)\n"
    rb"oid sha256:([0-9a-f]{64})\n"
    rb"size (0|[1-9][0-9]*)\n"
)
HEX64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
BOUNDARY_SIZES = [0, 1, 2**31, 2**32, 2**53 + 1, MAX_OBJECT_SIZE, MAX_OBJECT_SIZE + 1, 2**64 - 1, 2**64, 10**30]


@st.composite
def pointer_like(draw: st.DrawFn) -> bytes:
    """Three pointer lines with hostile parts: path-like or wrong-length oids, huge sizes."""
    version = draw(st.sampled_from([*KNOWN_VERSIONS, "https://gitmlx.dev/spec/v2", "https://gitmlx.dev/spec/v1 "]))
    oid = draw(
        st.one_of(
            HEX64,
            HEX64.map(lambda h: "../" * 3 + h[9:]),
            HEX64.map(lambda h: h[:32] + "/" + h[33:]),
            HEX64.map(lambda h: "/etc/" + h[5:]),
            st.text(alphabet="0123456789abcdef", min_size=60, max_size=68),
            st.text(alphabet="0123456789abcdefABCDEFg./\\ \x00", min_size=64, max_size=64),
        )
    )
    size = draw(
        st.one_of(
            st.sampled_from(BOUNDARY_SIZES).map(str),
            st.integers(0, 2**70).map(str),
            st.sampled_from(["-1", "+5", "05", "1e3", "0x10", " 5", "5 ", "", "٣"]),
        )
    )
    return f"version {version}\noid sha256:{oid}\nsize {size}\n".encode()


def spec_accepts(data: bytes) -> bool:
    m = SPEC.fullmatch(data)
    return m is not None and len(data) < 1024 and int(m.group(3)) <= MAX_OBJECT_SIZE


@given(st.one_of(pointer_like(), st.binary(max_size=300)))
@example(f"version {KNOWN_VERSIONS[0]}\noid sha256:{'a' * 64}\nsize {MAX_OBJECT_SIZE}\n".encode())
@example(f"version {KNOWN_VERSIONS[0]}\noid sha256:{'a' * 64}\nsize {2**64}\n".encode())
def test_parse_accepts_exactly_what_the_spec_allows(data: bytes) -> None:
    parsed = parse(data)
    assert (parsed is not None) == spec_accepts(data), data
    if parsed is not None:
        assert parsed.encode() == data


@given(st.text(max_size=80))
@example("../../../../etc/passwd")
@example("a" * 63 + "/")
@example("aa/bb/" + "a" * 58)
def test_no_string_becomes_a_store_path_outside_the_objects_folder(text: str) -> None:
    store = Store(Path("/nonexistent/store"))
    try:
        path = store.path(text)
    except MlxError:
        return
    assert re.fullmatch("[0-9a-f]{64}", text)
    assert path.parent.parent.parent == store.objects_dir and path.name == text


# --- the filter-process loop, fed arbitrary conversations -----------------------------------

WELCOME = b"0016git-filter-client\n000eversion=2\n0000" + b"0015capability=clean\n0016capability=smudge\n0000"


@st.composite
def conversations(draw: st.DrawFn) -> bytes:
    """A handshake, then requests that are well formed, truncated, or garbage."""
    out = io.BytesIO()
    out.write(draw(st.sampled_from([WELCOME, WELCOME, WELCOME, b"", b"0004", WELCOME[:20]])))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["request", "request", "garbage", "truncated"]))
        if kind == "garbage":
            out.write(draw(st.binary(max_size=40)))
            continue
        command = draw(st.sampled_from(["clean", "smudge", "frobnicate", ""]))
        path = draw(st.sampled_from(["a.bin", "fail.bin", "bug.bin", "", "../x", "é.bin"]))
        packet = io.BytesIO()
        pktline.write_text(packet, f"command={command}")
        pktline.write_text(packet, f"pathname={path}")
        if draw(st.booleans()):
            pktline.write_text(packet, draw(st.sampled_from(["can-delay=1", "ref=main", "noequals"])))
        pktline.write_flush(packet)
        pktline.ContentWriter(packet).write(draw(st.binary(max_size=200)))
        pktline.write_flush(packet)
        data = packet.getvalue()
        if kind == "truncated":
            data = data[: draw(st.integers(0, len(data) - 1))]
        out.write(data)
    return out.getvalue()


def _handler(command: str, request: dict[str, str], content: pktline.ContentReader):
    data = content.read()
    if request.get("pathname") == "fail.bin":
        raise MlxError("'fail.bin': no such object", "run 'git mlx pull'")
    if request.get("pathname") == "bug.bin":
        raise ValueError("a bug")
    return lambda sink: sink.write(data[::-1])


@given(conversations())
def test_filter_loop_answers_each_file_or_stops_with_a_protocol_error_never_abort(data: bytes) -> None:
    out = io.BytesIO()
    errors: list[str] = []
    try:
        serve(io.BytesIO(data), out, {"clean": _handler, "smudge": _handler}, lambda c, p, e: errors.append(p))
    except (pktline.PacketError, HandshakeError):
        pass  # git broke the framing: the process ends (git then reports the filter failed)
    answers = io.BytesIO(out.getvalue())
    statuses = []
    while True:
        try:
            packet = pktline.read_packet(answers)
        except EOFError:
            break
        if packet is not None and packet.startswith(b"status="):
            statuses.append(packet)
    assert b"status=abort\n" not in statuses
    assert set(statuses) <= {b"status=success\n", b"status=error\n"}
    assert statuses.count(b"status=error\n") >= len(errors)


# --- .mlxconfig through the real `git config` reader ----------------------------------------

CONFIG_LINES = st.sampled_from(
    [
        "[mlx]",
        '[mlx "s3"]',
        '[remote "origin"]',
        "[include]",
        '[includeIf "gitdir:/"]',
        "[MLX]",
        "[mlx.s3]",
        "\turl = s3://bucket/prefix",
        "\tcache = /tmp/elsewhere",
        "\tskipsmudge = true",
        "\tsmudgelimit = 1KiB",
        "\tconcurrency = 0",
        "\tconcurrency = 99999999999999999999",
        "\tendpoint-url = http://evil.example",
        "\tmlxurl = ../other",
        "\tpath = /etc/passwd",
        '\turl = "quoted \\" value"',
        "\turl = trailing \\",
        "\turl = a ; comment",
        "\tnovalue",
        "key-without-section = 1",
        "[unterminated",
        "\t= value",
        "# comment",
        "",
    ]
)
CONFIG_TEXT = st.one_of(
    st.lists(CONFIG_LINES, max_size=8).map("\n".join),
    st.lists(st.one_of(CONFIG_LINES, st.text(max_size=30)), max_size=6).map("\n".join),
)


def _honour_all(config: Config) -> None:
    """Ask for every setting the way gitmlx's commands do; only ConfigError may come out."""
    for setting in SETTINGS:
        config.get(setting.key)
        config.flag(setting.key)
        try:
            config.integer(setting.key)
        except ConfigError:
            pass


@GIT_EXAMPLES
@given(data=st.one_of(CONFIG_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=200)))
@example(data=b"[mlx]\n\tcache = /tmp/x\n\tskipsmudge = true\n")
@example(data=b"[include]\n\tpath = /etc/gitconfig\n[mlx]\nurl=x\n")
@example(data=b"\x00\xff[mlx\n")
def test_read_config_on_any_mlxconfig_gives_entries_or_an_error_naming_the_file(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("cfg") / ".mlxconfig"
    path.write_bytes(data)
    try:
        entries = read_config(cwd=path.parent, file=path)
    except MlxError as exc:
        assert str(path) in exc.message, exc.message
        assert exc.hint, "a malformed .mlxconfig must come with how to fix it"
        return
    assert all(isinstance(e.key, str) and isinstance(e.value, str) and e.scope == "file" for e in entries)
    config = Config({}, [], ((e.key, e.value) for e in entries))
    # Never honoured from a committed file, whatever its spelling (docs/threat-model.md).
    assert config.get("mlx.cache") is None
    assert config.get("mlx.skipsmudge").source == "default"
    _honour_all(config)


CONFIG_VALUE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
CONFIG_KEY = st.one_of(
    st.sampled_from([s.key for s in SETTINGS]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n"), min_size=1, max_size=12).map(
        lambda name: f"remote.{name}.mlxurl"
    ),
)


@GIT_EXAMPLES
@given(pairs=st.lists(st.tuples(CONFIG_KEY, CONFIG_VALUE), min_size=1, max_size=3))
@example(pairs=[("mlx.url", ' leading, "quoted", back\\slash, tab\t, newline\n, # ; ')])
@example(pairs=[('remote.we"ird\\ name.mlxurl', "x")])
def test_read_config_round_trips_what_git_config_writes(
    pairs: list[tuple[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("cfg") / ".mlxconfig"
    for key, value in pairs:
        subprocess.run(["git", "config", "--file", str(path), "--add", key, value], check=True, capture_output=True)
    entries = read_config(cwd=path.parent, file=path)
    # git appends a value to its key's existing section, so compare per key, in order.
    assert _by_key([(e.key, e.value) for e in entries]) == _by_key(pairs)


def _by_key(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


@given(st.text(max_size=12))
@example("²")
def test_a_committed_size_setting_is_a_size_or_a_config_error(text: str) -> None:
    assert parse_size(text) is None or isinstance(parse_size(text), int)
    config = Config({}, [], [("mlx.smudgelimit", text)])
    try:
        assert config.size("mlx.smudgelimit") >= 0
    except ConfigError as exc:
        assert "mlx.smudgelimit" in exc.message and ".mlxconfig" in exc.message


# --- manifests with a valid checksum and hostile numbers -------------------------------------

_HEADER = struct.Struct("<8s32sQII")
_RECORD = struct.Struct("<32sIQIIB")


@st.composite
def hostile_manifests(draw: st.DrawFn) -> tuple[bytes, Pointer]:
    """A valid manifest with header or record fields overwritten, checksum recomputed."""
    sizes = draw(st.lists(st.integers(1, 262_144), max_size=4))
    pack = hashlib.sha256(b"pack").hexdigest()
    chunks, offset = [], 0
    for i, size in enumerate(sizes):
        chunks.append(ChunkRef(hashlib.sha256(bytes([i])).digest(), pack, offset, size, size, 0))
        offset += size
    oid = hashlib.sha256(b"object").hexdigest()
    body = bytearray(Manifest(oid, sum(sizes), tuple(chunks)).encode()[:-32])
    u32 = st.sampled_from([0, 1, 2, 2**31, 2**32 - 1])
    u64 = st.sampled_from([0, 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1])
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(["size", "packs", "chunks", "index", "offset", "stored", "raw", "codec", "cut"]))
        record = 56 + 32 * (1 if sizes else 0) + 53 * draw(st.integers(0, max(0, len(sizes) - 1)))
        if field == "size":
            body[40:48] = struct.pack("<Q", draw(u64))
        elif field == "packs":
            body[48:52] = struct.pack("<I", draw(u32))
        elif field == "chunks":
            body[52:56] = struct.pack("<I", draw(u32))
        elif field == "cut":
            del body[draw(st.integers(0, len(body))) :]
        elif sizes:
            at, fmt, value = {
                "index": (32, "<I", u32),
                "offset": (36, "<Q", u64),
                "stored": (44, "<I", u32),
                "raw": (48, "<I", u32),
                "codec": (52, "<B", st.integers(0, 255)),
            }[field]
            body[record + at : record + at + struct.calcsize(fmt)] = struct.pack(fmt, draw(value))
    claimed = draw(st.sampled_from([sum(sizes), sum(sizes) + 1, 0, MAX_OBJECT_SIZE]))
    return bytes(body) + hashlib.sha256(bytes(body)).digest(), Pointer(oid, claimed)


@given(hostile_manifests())
def test_a_manifest_is_refused_or_every_number_in_it_is_consistent(case: tuple[bytes, Pointer]) -> None:
    data, pointer = case
    try:
        manifest = decode(data, pointer)
    except IntegrityError as exc:
        assert pointer.short_oid in exc.message and exc.hint
        return
    assert manifest.size == pointer.size == sum(c.raw for c in manifest.chunks)
    assert len(data) == 56 + 32 * len(set(c.pack for c in manifest.chunks)) + 53 * len(manifest.chunks) + 32 or (
        not manifest.chunks
    )
    for c in manifest.chunks:
        assert 0 < c.raw <= 262_144 and 0 < c.stored <= 266_240 and c.codec in (0, 1)
        assert re.fullmatch("[0-9a-f]{64}", c.pack)
