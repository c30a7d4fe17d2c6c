"""safetensors summaries: one line per tensor (name, dtype, shape, hash of its bytes).

Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N,
N bytes of JSON `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}}`, then the data; offsets count from the end of the header.

Owns: parsing and validating that header (size capped, offsets inside the file, byte
counts matching dtype and shape) and hashing each tensor's byte range.
Must not: import safetensors, numpy or torch (pure stdlib), or hold tensor data in memory.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from gitmlx.diffs.summary import (
    MAX_SAFETENSORS_HEADER,
    Malformed,
    check_shape,
    clip,
    element_count,
    hash_range,
    plural,
    quote,
    short,
)
from gitmlx.errors import shown
from gitmlx.format.sizes import human_size

#: Bits per element of the dtypes the format defines; others are shown but not size-checked.
DTYPE_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets relative to the start of the data section
    end: int


@dataclass(frozen=True)
class Header:
    metadata: dict[str, str]
    tensors: tuple[Tensor, ...]
    data_start: int  # absolute offset of the data section


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _small_int(text: str) -> int:
    """JSON integers of at most 20 digits (a u64): converting longer ones costs time
    quadratic in their length, and no offset or dimension needs them."""
    if len(text.lstrip("-")) > 20:
        raise ValueError(f"a number of {len(text)} digits")
    return int(text)


def read_header(f: BinaryIO, size: int) -> Header:
    """Parse and validate the header of the safetensors file `f` (`size` bytes long)."""
    f.seek(0)
    prefix = f.read(8)
    if len(prefix) < 8:
        raise Malformed("shorter than the 8-byte header length")
    (length,) = struct.unpack("<Q", prefix)
    if length > MAX_SAFETENSORS_HEADER:
        raise Malformed(f"header of {human_size(length)} is over the {human_size(MAX_SAFETENSORS_HEADER)} limit")
    if 8 + length > size:
        raise Malformed(f"header length {length} runs past the end of the file ({size} bytes)")
    raw = f.read(length)
    try:
        doc = json.loads(raw.decode("utf-8"), parse_int=_small_int)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"header is not JSON: {exc}") from None
    except RecursionError:
        raise Malformed("header is not JSON: nested too deep") from None
    if not isinstance(doc, dict):
        raise Malformed("header is not a JSON object")
    data_size = size - 8 - length
    metadata: dict[str, str] = {}
    tensors = []
    for name, entry in doc.items():
        if name == "__metadata__":
            if not isinstance(entry, dict):
                raise Malformed("__metadata__ is not an object")
            metadata = {
                str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))
                for k, v in entry.items()
            }
            continue
        tensors.append(_tensor(name, entry, data_size))
    return Header(metadata, tuple(tensors), 8 + length)


def _tensor(name: str, entry: object, data_size: int) -> Tensor:
    named = f"tensor {clip(quote(name), 80)}"  # errors stay one readable line, whatever the name
    if not isinstance(entry, dict):
        raise Malformed(f"entry {clip(quote(name), 80)} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str):
        raise Malformed(f"{named} has no dtype")
    if not isinstance(shape, list):
        raise Malformed(f"{named} has no valid shape")
    dims = check_shape(shape, named)
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise Malformed(f"{named} has no valid data_offsets")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        raise Malformed(f"{named}: data_offsets [{begin}, {end}] outside the {data_size} bytes of data")
    bits = DTYPE_BITS.get(dtype)
    if bits is not None:
        count = element_count(dims)
        expected = None if count is None else (count * bits + 7) // 8
        if expected != end - begin:
            needs = "more than 2^63 elements" if expected is None else f"{expected} bytes"
            raise Malformed(f"{named}: {dtype} {shown(list(dims), 100)} needs {needs}, data_offsets give {end - begin}")
    return Tensor(name, dtype, dims, begin, end)


def summarize(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    with open(path, "rb") as f:
        header = read_header(f, size)
        digests = {}
        # File order keeps the reads sequential; the lines come out sorted by name.
        for tensor in sorted(header.tensors, key=lambda t: (t.begin, t.end)):
            digests[tensor.name] = hash_range(f, header.data_start + tensor.begin, tensor.end - tensor.begin)
    data_bytes = sum(t.end - t.begin for t in header.tensors)
    yield f"safetensors: {plural(len(header.tensors), 'tensor')}, {human_size(data_bytes)} of tensor data"
    for key in sorted(header.metadata):
        yield f"__metadata__ {quote(key)}: {clip(header.metadata[key], 1000)}"
    for tensor in sorted(header.tensors, key=lambda t: t.name):
        shape = "[" + ", ".join(str(d) for d in tensor.shape) + "]"
        yield f"{quote(tensor.name)}  {tensor.dtype}  {shape}  {short(digests[tensor.name])}"
