"""Readable, diffable summaries of artifacts: what the `diff=mlx` textconv driver prints.

Git runs `git-mlx textconv FILE` on each side of a diff (FILE is the work-tree file or a
temporary file holding the *smudged* content) and diffs the two outputs line by line.
So every summary is built to be line-stable: one line per tensor, array or row, in name
or file order; no column alignment (a longer name added elsewhere would re-indent every
line) and no running positions that shift when something is inserted.

Owns: recognising the format (content first, extension second), the shared hashing and
quoting helpers, and the fallback summary (size and sha256) for anything unrecognised or
malformed. Git aborts the whole diff when a textconv fails, so bad content must never
raise out of `summarize`; only a file that cannot be opened at all does (OSError).
Must not: read a whole file into memory (headers are capped, data is hashed in 1 MiB
blocks), print, or import click, tqdm, boto3 or pygit2: this runs once per file per diff.
The format modules are imported only when a file of their kind shows up.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

from gitmlx.errors import MlxError
from gitmlx.format import pointer as pointers
from gitmlx.format.sizes import human_size

BLOCK = 1024 * 1024
#: Hex digits of sha256 shown per tensor, array or chunk: plenty to tell versions apart.
SHORT_HEX = 16
#: Unrecognised content this small that looks like UTF-8 text is shown as it is.
TEXT_LIMIT = 1024 * 1024
#: How much of a file is read up front to recognise it.
HEAD_SIZE = 64 * 1024
#: A safetensors JSON header larger than this is refused (the file is then summarised
#: by size and hash): the header is the one part read into memory.
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024

MAX_ROWS_ENV = "GIT_MLX_DIFF_MAX_ROWS"
DEFAULT_MAX_ROWS = 10_000

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
PARQUET_MAGIC = b"PAR1"

_EXTENSIONS = {
    ".safetensors": "safetensors",
    ".npy": "npy",
    ".npz": "npz",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


class Malformed(MlxError):
    """The content claims a format (by magic bytes or extension) but breaks its rules."""


#: Dimensions an array may have (numpy's own limit): a header claiming more is malformed.
MAX_DIMS = 64
#: The largest dimension or element count taken seriously: nothing on disk holds more.
MAX_ELEMENTS = 2**63 - 1


def check_shape(shape: list | tuple, what: str) -> tuple[int, ...]:
    """`shape` as a tuple of sizes, after bounding it: at most MAX_DIMS dimensions, each a
    non-negative integer up to MAX_ELEMENTS. A hostile header's 800 dimensions of 4,000
    digits would otherwise cost minutes of big-number arithmetic in every `git log -p`."""
    if len(shape) > MAX_DIMS:
        raise Malformed(f"{what} has {len(shape)} dimensions (at most {MAX_DIMS})")
    for d in shape:
        if not (isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_ELEMENTS):
            raise Malformed(f"{what} has an invalid shape")
    return tuple(shape)


def element_count(shape: tuple[int, ...]) -> int | None:
    """The product of `shape`, or None once it passes MAX_ELEMENTS (checked as it grows,
    so the numbers multiplied stay machine-sized)."""
    if 0 in shape:
        return 0
    count = 1
    for d in shape:
        count *= d
        if count > MAX_ELEMENTS:
            return None
    return count


# --- shared helpers ----------------------------------------------------------------------


def short(hexdigest: str) -> str:
    return f"sha256:{hexdigest[:SHORT_HEX]}"


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    """sha256 hex and length of everything left in `stream`, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    total = 0
    while block := stream.read(BLOCK):
        digest.update(block)
        total += len(block)
    return digest.hexdigest(), total


def hash_range(f: BinaryIO, start: int, length: int) -> str:
    """sha256 hex of `length` bytes at `start`; Malformed if the file ends first."""
    f.seek(start)
    digest = hashlib.sha256()
    left = length
    while left:
        block = f.read(min(left, BLOCK))
        if not block:
            raise Malformed(f"file ends {left} bytes before the end of a range at offset {start}")
        digest.update(block)
        left -= len(block)
    return digest.hexdigest()


def hash_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        return hash_stream(f)[0]


def quote(name: str) -> str:
    """`name` as is when it is one printable word, else as a JSON string (unambiguous)."""
    if name and name.isprintable() and not any(c.isspace() for c in name):
        return name
    return json.dumps(name, ensure_ascii=False)


def clip(text: str, limit: int = 2000) -> str:
    """`text`, or its start plus the length and a hash of all of it, so a change past the
    cut still changes the line."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{text[:limit]}… [{len(text)} chars, {short(digest)}]"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def max_rows() -> int:
    """Rows shown one per line before the rest is summarised (GIT_MLX_DIFF_MAX_ROWS)."""
    value = os.environ.get(MAX_ROWS_ENV, "").strip()
    if value.isdigit():
        return int(value)
    return DEFAULT_MAX_ROWS


# --- recognising content -----------------------------------------------------------------


def detect(name: str, head: bytes, size: int) -> str:
    """The kind of a file from its first bytes (`head`), its size and its name.

    Magic bytes win over the extension; the extension alone selects a format for text
    formats (CSV, JSONL), and for binary ones whose magic is wrong (so the summary can
    say what is wrong with the file instead of calling it unknown binary data).
    """
    if size == 0:
        return "empty"
    if size < pointers.MAX_POINTER_SIZE and pointers.parse(head) is not None:
        return "pointer"
    ext = os.path.splitext(name)[1].lower()
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head[:4] in ZIP_MAGICS and ext == ".npz":
        return "npz"
    if looks_like_safetensors(head, size):
        return "safetensors"
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if size <= TEXT_LIMIT and _looks_like_text(head, complete=size <= len(head)):
        return "text"
    return "binary"


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """8-byte little-endian header length that fits the file, then a JSON object."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= min(MAX_SAFETENSORS_HEADER, size - 8)


def _looks_like_text(head: bytes, complete: bool) -> bool:
    if b"\0" in head[:8000]:  # git's own binary heuristic
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of `head` is fine; anything else is not.
        return not complete and exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


# --- summaries ---------------------------------------------------------------------------


def fallback(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    yield f"binary data: {size} bytes ({human_size(size)}), sha256:{hash_file(path)}"


def _pointer(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    with open(path, "rb") as f:
        parsed = pointers.parse(f.read(pointers.MAX_POINTER_SIZE))
    assert parsed is not None  # detect() parsed the same bytes
    kind = "Git LFS pointer" if parsed.is_lfs else "gitmlx pointer"
    yield f"{kind}: oid sha256:{parsed.oid}, size {parsed.size} (content not checked out)"


def _empty(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    yield "empty file"


def _text(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    with open(path, "rb") as f:
        data = f.read(TEXT_LIMIT + 1)
    text = data.decode("utf-8")  # UnicodeDecodeError → the caller's fallback
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for line in lines:
        yield line.removesuffix("\r")


def _summarizer(kind: str) -> Callable[[str | os.PathLike[str], int], Iterator[str]]:
    if kind == "pointer":
        return _pointer
    if kind == "text":
        return _text
    if kind == "empty":
        return _empty
    if kind == "safetensors":
        from gitmlx.diffs import safetensors

        return safetensors.summarize
    if kind in ("npy", "npz"):
        from gitmlx.diffs import numpy_files

        return numpy_files.summarize_npy if kind == "npy" else numpy_files.summarize_npz
    if kind in ("csv", "tsv", "jsonl", "parquet"):
        from gitmlx.diffs import tables

        return {
            "csv": tables.summarize_csv,
            "tsv": tables.summarize_tsv,
            "jsonl": tables.summarize_jsonl,
            "parquet": tables.summarize_parquet,
        }[kind]
    return fallback


#: Finds the content a pointer stands for (a path in the local store), or None.
Resolver = Callable[[pointers.Pointer], "str | os.PathLike[str] | None"]


def summarize(path: str | os.PathLike[str], resolve: Resolver | None = None, name: str | None = None) -> Iterator[str]:
    """The summary of the file at `path`, one line per item (without line ends).

    A pointer is summarised as the content it stands for when `resolve` finds that
    locally; else as the pointer. `name` (default: `path`) is what the extension is taken
    from. Never raises for the file's content: a summarizer that fails (malformed content,
    or a bug) is followed by one line saying why and the size-and-hash summary. Raises
    OSError only when the file itself cannot be read.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(HEAD_SIZE)
    kind = detect(name or os.fspath(path), head, size)
    if kind == "pointer" and resolve is not None:
        parsed = pointers.parse(head)
        local = resolve(parsed) if parsed is not None else None
        if local is not None:
            yield from summarize(local, None, name or os.fspath(path))
            return
    try:
        yield from _summarizer(kind)(path, size)
    except Exception as exc:  # noqa: BLE001 - git aborts the whole diff if a textconv fails
        # Includes OSError: libraries report bad content that way too (pyarrow). A file
        # that really cannot be read fails again in `fallback`, and that one propagates.
        reason = str(exc) if isinstance(exc, Malformed) else f"{type(exc).__name__}: {exc}"
        label = "text" if kind == "text" else kind
        yield f"(not a readable {label} file: {clip(reason, 200)}; showing size and hash only)"
        yield from fallback(path, size)
