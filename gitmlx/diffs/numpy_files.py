"""NumPy .npy and .npz summaries: dtype, shape and a hash of the data, per array.

.npy (numpy/lib/format.py): magic `\\x93NUMPY`, version bytes, a 2-byte (v1) or 4-byte
(v2, v3) little-endian header length, then a Python dict literal with `descr`,
`fortran_order` and `shape`, then the raw data. .npz is a zip of .npy members.

Owns: reading that header safely (length capped, `ast.literal_eval`, never pickle) and
hashing the data as a stream; .npz members are read one by one through `zipfile`,
decompressed as they are hashed.
Must not: import numpy, load object arrays, or hold array data in memory.
"""

from __future__ import annotations

import ast
import os
import re
import struct
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from gitmlx.diffs.summary import (
    NPY_MAGIC,
    Malformed,
    check_shape,
    element_count,
    hash_stream,
    plural,
    quote,
    short,
)

#: numpy itself refuses headers over 10 000 bytes by default; structured dtypes with many
#: fields can legitimately need more, and `literal_eval` of this much is still cheap.
MAX_HEADER = 1024 * 1024

_SIMPLE_DESCR = re.compile(r"[<>|=]?([?bBhHiIlLqQpPefdgFDGSUVaumMc])(\d*)(\[\w+\])?")


@dataclass(frozen=True)
class NpyHeader:
    descr: object  # a dtype string such as '<f4', or a list for structured dtypes
    fortran_order: bool
    shape: tuple[int, ...]

    def describe(self) -> str:
        descr = self.descr if isinstance(self.descr, str) else repr(self.descr)
        shape = "[" + ", ".join(str(d) for d in self.shape) + "]"
        order = "  fortran-order" if self.fortran_order else ""
        return f"{descr}  {shape}{order}"

    def expected_nbytes(self) -> int | None:
        """Bytes of data the header promises, when the dtype is a simple fixed-size one."""
        if not isinstance(self.descr, str):
            return None
        match = _SIMPLE_DESCR.fullmatch(self.descr)
        if match is None or not match.group(2).isascii() or not 0 < len(match.group(2)) <= 20:
            return None  # no width, or one no int() should convert (thousands of digits)
        kind, width = match.group(1), int(match.group(2))
        itemsize = width * 4 if kind == "U" else width
        count = element_count(self.shape)
        return None if count is None else count * itemsize


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise Malformed("the .npy header is cut short")
    return data


def read_header(stream: BinaryIO) -> NpyHeader:
    """Read the .npy header from the start of `stream`, leaving it at the data."""
    if _read_exact(stream, 6) != NPY_MAGIC:
        raise Malformed("no .npy magic")
    major, minor = _read_exact(stream, 2)
    if major == 1:
        (length,) = struct.unpack("<H", _read_exact(stream, 2))
    elif major in (2, 3):
        (length,) = struct.unpack("<I", _read_exact(stream, 4))
    else:
        raise Malformed(f"unknown .npy format version {major}.{minor}")
    if length > MAX_HEADER:
        raise Malformed(f".npy header of {length} bytes is over the {MAX_HEADER} limit")
    raw = _read_exact(stream, length)
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
        # literal_eval accepts literals only: no names, calls or attribute access. Python's
        # warnings about the text ("invalid escape sequence") would land in `git diff`'s output.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            doc = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise Malformed(f".npy header is not a dict literal: {type(exc).__name__}") from None
    if not isinstance(doc, dict) or set(doc) != {"descr", "fortran_order", "shape"}:
        raise Malformed(".npy header does not have exactly descr, fortran_order and shape")
    shape = doc["shape"]
    if not isinstance(shape, tuple):
        raise Malformed(".npy header has an invalid shape")
    shape = check_shape(shape, ".npy header")
    if not isinstance(doc["fortran_order"], bool):
        raise Malformed(".npy header has an invalid fortran_order")
    return NpyHeader(doc["descr"], doc["fortran_order"], shape)


def _array_line(header: NpyHeader, digest: str, nbytes: int) -> str:
    line = f"{header.describe()}  {short(digest)}"
    expected = header.expected_nbytes()
    if expected is not None and expected != nbytes:
        line += f"  (data is {nbytes} bytes, the header promises {expected})"
    return line


def summarize_npy(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    with open(path, "rb") as f:
        header = read_header(f)
        digest, nbytes = hash_stream(f)
    yield f"npy: {_array_line(header, digest, nbytes)}"


def summarize_npz(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    with zipfile.ZipFile(path) as archive:
        members = sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.filename)
        arrays = sum(1 for i in members if i.filename.endswith(".npy"))
        others = len(members) - arrays
        yield f"npz: {plural(arrays, 'array')}" + (f", {plural(others, 'other member')}" if others else "")
        for info in members:
            yield _member_line(archive, info)


def _member_line(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    name = info.filename
    if name.endswith(".npy"):
        with archive.open(info) as member:
            try:
                header = read_header(member)
            except Malformed as exc:
                reason = str(exc)
            else:
                digest, nbytes = hash_stream(member)
                # np.load(...)[key] names arrays without the .npy suffix
                return f"{quote(name[: -len('.npy')])}  {_array_line(header, digest, nbytes)}"
        label = f"(not an array: {reason})"
    else:
        label = "(not an array)"
    with archive.open(info) as member:
        digest, nbytes = hash_stream(member)
    return f"{quote(name)}  {label}  {nbytes} bytes  {short(digest)}"
