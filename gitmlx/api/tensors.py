"""Selected tensors of a safetensors artifact as numpy arrays, reading only their bytes.

Owns: the safetensors dtype → numpy mapping (little-endian, as the format stores it), BF16
conversion, and reading each selected tensor straight into its array (`readinto`, no
intermediate copy). The header is parsed and validated by gitmlx.diffs.safetensors.
Must not: locate or open artifacts (api.artifacts hands it an open file), import numpy at
module level (an optional extra: `pip install 'gitmlx[numpy]'`), or read tensors that were
not asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO

from gitmlx.diffs.safetensors import Tensor, read_header
from gitmlx.diffs.summary import Malformed
from gitmlx.errors import IntegrityError, MlxError

if TYPE_CHECKING:
    import numpy

#: safetensors dtype → numpy dtype of the stored bytes. BF16 is read as its raw 16 bits.
DTYPES = {
    "BOOL": "?",
    "U8": "u1",
    "I8": "i1",
    "U16": "<u2",
    "I16": "<i2",
    "F16": "<f2",
    "BF16": "<u2",
    "U32": "<u4",
    "I32": "<i4",
    "F32": "<f4",
    "U64": "<u8",
    "I64": "<i8",
    "F64": "<f8",
    "C64": "<c8",
}
BF16_MODES = ("float32", "uint16")


def _numpy():
    try:
        import numpy
    except ImportError:
        raise ImportError("gitmlx.load_tensors needs numpy: pip install 'gitmlx[numpy]'") from None
    return numpy


def check_ready(bf16: str):
    """numpy, once `bf16` is known to be a valid mode: called before any artifact is opened."""
    np = _numpy()
    if bf16 not in BF16_MODES:
        raise ValueError(f"bf16 must be one of {BF16_MODES}, not {bf16!r}")
    return np


def load(
    f: BinaryIO,
    size: int,
    where: str,
    names: str | Iterable[str] | None,
    bf16: str = "float32",
) -> dict[str, numpy.ndarray]:
    """The tensors `names` (all when None) of the safetensors file open as `f` (`size`
    bytes; `where` names it in errors), each read straight from its byte range."""
    np = check_ready(bf16)
    try:
        header = read_header(f, size)
    except Malformed as exc:
        raise MlxError(
            f"{where} is not a valid safetensors file ({exc})",
            "read it with gitmlx.open instead",
        ) from None
    by_name = {t.name: t for t in header.tensors}
    wanted = list(by_name) if names is None else [names] if isinstance(names, str) else list(names)
    missing = [n for n in wanted if n not in by_name]
    if missing:
        known = ", ".join(sorted(by_name)[:10]) + (", ..." if len(by_name) > 10 else "")
        raise MlxError(
            f"{where} has no tensor {', '.join(repr(n) for n in missing)}",
            f"its tensors are: {known}" if by_name else "it holds no tensors",
        )
    arrays = {}
    # File order: consecutive reads of neighbouring tensors share cached chunks.
    for tensor in sorted((by_name[n] for n in dict.fromkeys(wanted)), key=lambda t: t.begin):
        arrays[tensor.name] = _read(np, f, header.data_start, tensor, where, bf16)
    return {name: arrays[name] for name in wanted}


def _read(np, f, data_start: int, tensor: Tensor, where: str, bf16: str):
    stored = DTYPES.get(tensor.dtype)
    if stored is None:
        raise MlxError(
            f"tensor '{tensor.name}' of {where} has dtype {tensor.dtype}, which numpy cannot represent",
            "read its bytes with gitmlx.read_range (offsets are in the safetensors header)",
        )
    array = np.empty(tensor.shape, dtype=np.dtype(stored))
    if array.nbytes != tensor.end - tensor.begin:  # read_header checks this; never trust it twice
        raise MlxError(f"tensor '{tensor.name}' of {where}: its size does not match its dtype and shape")
    if array.nbytes:
        f.seek(data_start + tensor.begin)
        got = f.readinto(memoryview(array.reshape(-1).view(np.uint8)))
        if got != array.nbytes:
            raise IntegrityError(f"tensor '{tensor.name}' of {where}: file ended early")
    if tensor.dtype == "BF16" and bf16 == "float32":
        # bfloat16 is the top half of a float32: widening is exact.
        array = (array.astype("<u4") << 16).view("<f4")
    return array
