"""gitmlx.format.pointer: golden cases for the one canonical encoding, and property tests."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.format import pointer as pointers
from gitmlx.format.pointer import (
    KNOWN_VERSIONS,
    LFS_VERSION,
    MAX_OBJECT_SIZE,
    MAX_POINTER_SIZE,
    MLX_VERSION,
    Pointer,
    describe_invalid,
    is_valid_oid,
    looks_like_pointer,
    parse,
)

OID = hashlib.sha256(b"hello").hexdigest()
LFS_SPEC_OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"

MLX_POINTER = f"version https://gitmlx.dev/spec/v1\noid sha256:{OID}\nsize 5\n".encode()
# The example in the Git LFS pointer spec v1 (docs/spec.md), byte for byte.
LFS_POINTER = f"version https://git-lfs.github.com/spec/v1\noid sha256:{LFS_SPEC_OID}\nsize 12345\n".encode()


def make(version: str = MLX_VERSION, oid: str = OID, size: str = "5") -> bytes:
    return f"version {version}\noid sha256:{oid}\nsize {size}\n".encode()


def padded_to(length: int, base: bytes) -> bytes:
    """`base` with trailing content so the whole input is exactly `length` bytes."""
    assert len(base) <= length
    return base + b"x" * (length - len(base))


# --- golden cases -------------------------------------------------------------------


def test_parse_canonical_gitmlx_pointer() -> None:
    assert parse(MLX_POINTER) == Pointer(OID, 5, MLX_VERSION)
    assert not parse(MLX_POINTER).is_lfs


def test_parse_canonical_git_lfs_pointer() -> None:
    p = parse(LFS_POINTER)
    assert p == Pointer(LFS_SPEC_OID, 12345, LFS_VERSION)
    assert p.is_lfs
    assert p.as_mlx() == Pointer(LFS_SPEC_OID, 12345, MLX_VERSION)


def test_gitmlx_version_line_is_not_the_git_lfs_one() -> None:
    # Hosting services reject pushes of LFS pointers whose objects they lack (docs/pointer-format.md).
    assert MLX_VERSION != LFS_VERSION
    assert b"git-lfs" not in MLX_POINTER


def test_encode_is_canonical_bytes() -> None:
    assert Pointer(OID, 5).encode() == MLX_POINTER
    assert Pointer(LFS_SPEC_OID, 12345, LFS_VERSION).encode() == LFS_POINTER


@pytest.mark.parametrize("size", [0, 1, 5, 10**9, MAX_OBJECT_SIZE])
@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_encode_parse_round_trip(version: str, size: int) -> None:
    p = Pointer(OID, size, version)
    assert parse(p.encode()) == p


def test_short_oid() -> None:
    assert Pointer(OID, 5).short_oid == OID[:10]


@pytest.mark.parametrize(
    ("oid", "size", "version"),
    [
        (OID.upper(), 5, MLX_VERSION),
        (OID[:63], 5, MLX_VERSION),
        (OID + "0", 5, MLX_VERSION),
        ("../" + OID[3:], 5, MLX_VERSION),
        (OID, -1, MLX_VERSION),
        (OID, 2**63, MLX_VERSION),
        (OID, 5, "https://example.com/spec/v1"),
    ],
)
def test_pointer_constructor_rejects_invalid_values(oid: str, size: int, version: str) -> None:
    with pytest.raises(ValueError):
        Pointer(oid, size, version)


NOT_POINTERS = {
    "crlf": MLX_POINTER.replace(b"\n", b"\r\n"),
    "crlf_last_line_only": MLX_POINTER[:-1] + b"\r\n",
    "uppercase_hex": make(oid=OID.upper()),
    "one_uppercase_digit": make(oid=OID[:-1] + "A") if OID[-1] in "abcdef" else make(oid="A" + OID[1:]),
    "63_hex": make(oid=OID[:63]),
    "65_hex": make(oid=OID + "a"),
    "non_hex": make(oid="g" + OID[1:]),
    "dotdot_in_oid": make(oid="../../" + OID[6:]),
    "slash_in_oid": make(oid=OID[:32] + "/" + OID[33:]),
    "sha1_oid_type": make().replace(b"sha256:", b"sha1:"),
    "no_oid_type": make().replace(b"sha256:", b""),
    "unknown_extra_key": make() + b"foo bar\n",
    "extra_key_in_middle": MLX_POINTER.replace(b"\nsize", b"\nother x\nsize"),
    "ext_key": make().replace(b"\noid", b"\next-0-foo sha256:" + OID.encode() + b"\noid"),
    "keys_out_of_order": f"version {MLX_VERSION}\nsize 5\noid sha256:{OID}\n".encode(),
    "version_not_first": f"oid sha256:{OID}\nversion {MLX_VERSION}\nsize 5\n".encode(),
    "duplicate_key": make() + b"size 5\n",
    "missing_size": f"version {MLX_VERSION}\noid sha256:{OID}\n".encode(),
    "missing_oid": f"version {MLX_VERSION}\nsize 5\n".encode(),
    "missing_trailing_lf": MLX_POINTER[:-1],
    "extra_blank_line": MLX_POINTER + b"\n",
    "blank_line_between": MLX_POINTER.replace(b"\noid", b"\n\noid"),
    "leading_blank_line": b"\n" + MLX_POINTER,
    "two_spaces": MLX_POINTER.replace(b"size 5", b"size  5"),
    "tab_separator": MLX_POINTER.replace(b"size 5", b"size\t5"),
    "trailing_space": MLX_POINTER.replace(b"size 5", b"size 5 "),
    "leading_space": b" " + MLX_POINTER,
    "leading_zero_size": make(size="05"),
    "zero_zero_size": make(size="00"),
    "negative_size": make(size="-1"),
    "plus_size": make(size="+5"),
    "hex_size": make(size="0x5"),
    "underscore_size": make(size="1_000"),
    "unicode_digit_size": make(size="\u0665"),
    "empty_size": make(size=""),
    "size_2_63": make(size=str(2**63)),
    "size_2_64": make(size=str(2**64)),
    "size_huge": make(size="9" * 200),
    "unknown_version": make(version="https://git-lfs.github.com/spec/v2"),
    "version_trailing_slash": make(version=MLX_VERSION + "/"),
    "old_lfs_version": make(version="http://git-media.io/v/2"),
    "empty": b"",
    "just_lf": b"\n",
    "binary_garbage": bytes(range(256)),
    "nul_bytes": b"\x00" * 100,
    "non_ascii_in_version": make(version=MLX_VERSION + "\u00e9"),
    "utf8_bom": b"\xef\xbb\xbf" + MLX_POINTER,
    "mlx_pointer_twice": MLX_POINTER + MLX_POINTER,
}


@pytest.mark.parametrize("data", NOT_POINTERS.values(), ids=NOT_POINTERS.keys())
def test_not_a_pointer(data: bytes) -> None:
    assert parse(data) is None


def test_largest_size_is_a_pointer_and_one_more_is_not() -> None:
    assert parse(make(size=str(MAX_OBJECT_SIZE))) == Pointer(OID, MAX_OBJECT_SIZE)
    assert parse(make(size=str(MAX_OBJECT_SIZE + 1))) is None


def test_size_zero_is_a_pointer() -> None:
    assert parse(make(size="0")) == Pointer(OID, 0)


@pytest.mark.parametrize("length", [MAX_POINTER_SIZE - 1, MAX_POINTER_SIZE, MAX_POINTER_SIZE + 1])
@pytest.mark.parametrize(
    "base",
    [
        pytest.param(MLX_POINTER, id="trailing_content"),
        pytest.param(make(version="https://gitmlx.dev/spec/v1/"), id="long_unknown_version"),
    ],
)
def test_inputs_around_the_size_limit_are_not_pointers(base: bytes, length: int) -> None:
    if base != MLX_POINTER:  # grow the version line itself, keeping three well-formed lines
        base = make(version="https://gitmlx.dev/spec/v1/" + "v" * (length - len(base)))
    data = padded_to(length, base)
    assert len(data) == length
    assert parse(data) is None


def test_a_1024_byte_input_never_parses_even_if_the_limit_check_is_the_only_obstacle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Make a syntactically perfect pointer exactly 1024 bytes long by accepting a long
    # version string; only the length rule may reject it.
    long_version = "https://gitmlx.dev/spec/v1#" + "v"
    base_len = len(make(version=long_version))
    long_version += "v" * (MAX_POINTER_SIZE - base_len)
    monkeypatch.setattr(pointers, "KNOWN_VERSIONS", (*KNOWN_VERSIONS, long_version, long_version[:-1]))
    data = make(version=long_version)
    assert len(data) == MAX_POINTER_SIZE
    assert parse(data) is None
    shorter = make(version=long_version[:-1])
    assert len(shorter) == MAX_POINTER_SIZE - 1
    assert parse(shorter) is not None


# --- describe_invalid ---------------------------------------------------------------


def test_describe_invalid_is_none_for_real_pointers() -> None:
    assert describe_invalid(MLX_POINTER) is None
    assert describe_invalid(LFS_POINTER) is None


@pytest.mark.parametrize("data", [b"", b"hello world\n", bytes(range(256)), make(version="https://example.com/v1")])
def test_describe_invalid_is_none_for_content_that_does_not_start_like_a_pointer(data: bytes) -> None:
    assert describe_invalid(data) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (make(oid=OID.upper()), "oid is not 'sha256:' and 64 lowercase hex digits"),
        (make(oid=OID[:63]), "oid is not 'sha256:' and 64 lowercase hex digits"),
        (make().replace(b"sha256:", b"md5:"), "oid is not 'sha256:' and 64 lowercase hex digits"),
        (make(size="05"), "size is not a decimal number below 2^63"),
        (make(size="-1"), "size is not a decimal number below 2^63"),
        (make(size=str(2**63)), "size is not a decimal number below 2^63"),
        (make(size="9" * 200), "size is not a decimal number below 2^63"),
        (MLX_POINTER[:-1], "not in the canonical encoding (three LF-terminated lines: version, oid, size)"),
        (MLX_POINTER + b"\n", "not in the canonical encoding (three LF-terminated lines: version, oid, size)"),
        (make() + b"foo bar\n", "not in the canonical encoding (three LF-terminated lines: version, oid, size)"),
        (padded_to(MAX_POINTER_SIZE, MLX_POINTER), "longer than 1023 bytes"),
        (padded_to(MAX_POINTER_SIZE + 1, LFS_POINTER), "longer than 1023 bytes"),
    ],
)
def test_describe_invalid_says_why(data: bytes, expected: str) -> None:
    assert parse(data) is None
    assert describe_invalid(data) == expected


def test_describe_invalid_crlf_pointer_is_not_pointer_like() -> None:
    # The version line must match exactly (LF included) for a warning; CRLF text is content.
    assert describe_invalid(MLX_POINTER.replace(b"\n", b"\r\n")) is None


def test_describe_invalid_1023_bytes_is_not_about_length() -> None:
    data = padded_to(MAX_POINTER_SIZE - 1, MLX_POINTER)
    message = describe_invalid(data)
    assert message is not None and "longer" not in message


def test_describe_invalid_on_non_ascii_does_not_raise() -> None:
    data = MLX_POINTER.replace(b"size 5", b"size \xff\xfe")
    assert describe_invalid(data) == "size is not a decimal number below 2^63"


# --- looks_like_pointer -------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        b"",
        b"v",
        b"version ",
        b"version https://",
        b"version https://gitmlx",
        f"version {MLX_VERSION}".encode(),
        f"version {MLX_VERSION}\n".encode(),
        MLX_POINTER,
        b"version https://git-lfs",
        LFS_POINTER,
        LFS_POINTER + b"anything after the first line",
    ],
)
def test_looks_like_pointer_true_for_pointer_prefixes(prefix: bytes) -> None:
    assert looks_like_pointer(prefix)


@pytest.mark.parametrize(
    "prefix",
    [
        b"x",
        b"Version",
        b"version http://",
        b"version https://example.com/",
        f"version {MLX_VERSION}X".encode(),
        f"version {MLX_VERSION}/\n".encode(),
        b"\x89PNG\r\n",
        b" version",
    ],
)
def test_looks_like_pointer_false_for_other_prefixes(prefix: bytes) -> None:
    assert not looks_like_pointer(prefix)


def test_is_valid_oid() -> None:
    assert is_valid_oid(OID)
    assert not is_valid_oid(OID.upper())
    assert not is_valid_oid(OID + "\n")
    assert not is_valid_oid("")
    assert not is_valid_oid(None)  # type: ignore[arg-type]
    assert not is_valid_oid(OID.encode())  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------

oids = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
sizes = st.integers(min_value=0, max_value=MAX_OBJECT_SIZE)
versions = st.sampled_from(KNOWN_VERSIONS)
valid_pointers = st.builds(Pointer, oids, sizes, versions)


@st.composite
def mutated_pointers(draw: st.DrawFn) -> bytes:
    """A valid pointer with a few bytes replaced, inserted or deleted: near misses."""
    data = bytearray(draw(valid_pointers).encode())
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.sampled_from([b"\r", b"\n", b" ", b"0", b"A", b"-", b"/", b"\x00", b"\xff", b"9"]))
        if op == "insert" or i == len(data):
            data[i:i] = byte
        elif op == "replace":
            data[i : i + 1] = byte
        else:
            del data[i]
    return bytes(data)


@st.composite
def structured_candidates(draw: st.DrawFn) -> bytes:
    """Lines built from pointer-ish parts, so some parse and many nearly do."""
    version = draw(st.sampled_from([*KNOWN_VERSIONS, "https://git-lfs.github.com/spec/v2", ""]))
    oid = draw(st.one_of(oids, st.text(alphabet="0123456789abcdefABCDEF./", min_size=62, max_size=66)))
    size = draw(st.one_of(sizes.map(str), st.text(alphabet="-+ 0123456789", max_size=22)))
    lines = [f"version {version}", f"oid sha256:{oid}", f"size {size}"]
    lines = draw(st.permutations(lines)) if draw(st.booleans()) else lines
    extra = draw(st.lists(st.sampled_from(["ext-0-x sha256:ab", "foo bar", "", "size 1"]), max_size=2))
    sep = draw(st.sampled_from(["\n", "\n", "\n", "\r\n"]))
    end = draw(st.sampled_from([sep, sep, "", sep + sep]))
    return (sep.join([*lines, *extra]) + end).encode("utf-8")


candidates = st.one_of(st.binary(max_size=2048), mutated_pointers(), structured_candidates())


@given(candidates)
def test_parse_never_raises(data: bytes) -> None:
    result = parse(data)
    assert result is None or isinstance(result, Pointer)
    describe_invalid(data)
    looks_like_pointer(data)


@given(valid_pointers)
def test_parse_of_encode_is_identity(p: Pointer) -> None:
    encoded = p.encode()
    assert len(encoded) < MAX_POINTER_SIZE
    assert parse(encoded) == p
    assert looks_like_pointer(encoded)
    assert describe_invalid(encoded) is None


@given(candidates)
def test_anything_parse_accepts_has_exactly_one_encoding(data: bytes) -> None:
    p = parse(data)
    if p is not None:
        assert p.encode() == data
