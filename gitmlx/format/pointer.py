"""Pointer stubs: the small text git stores in place of an object.

Owns: the one canonical encoding of a gitmlx pointer, and the parser that also accepts
canonical Git LFS v1 pointers (same sha256 oid space). See docs/pointer-format.md.
Must not: do any I/O. A blob that does not parse *exactly* is ordinary content, so
`parse` returns None rather than raising for anything that is not a pointer.
"""

from __future__ import annotations

import re
from collections import namedtuple

MLX_VERSION = "https://gitmlx.dev/spec/v1"
LFS_VERSION = "https://git-lfs.github.com/spec/v1"
KNOWN_VERSIONS = (MLX_VERSION, LFS_VERSION)

#: Pointers are always shorter than this (Git LFS spec: "less than 1024 bytes").
MAX_POINTER_SIZE = 1024
#: Largest size a pointer may claim: what a signed 64-bit file offset can hold.
MAX_OBJECT_SIZE = 2**63 - 1

_OID_RE = re.compile(r"[0-9a-f]{64}")
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,18}")
_MLX_PREFIX = f"version {MLX_VERSION}\n".encode()
_LFS_PREFIX = f"version {LFS_VERSION}\n".encode()


def is_valid_oid(oid: str) -> bool:
    """True for exactly 64 lowercase hex digits: the only oids that may become paths."""
    return isinstance(oid, str) and _OID_RE.fullmatch(oid) is not None


class Pointer(namedtuple("_PointerFields", ("oid", "size", "version"), defaults=(MLX_VERSION,))):
    """A parsed pointer: which object (sha256 `oid`, str) and how many bytes it has (`size`,
    int), under which `version` line.

    An immutable value checked when made. A named tuple rather than a dataclass: every git
    command that starts the filter imports this module, and `dataclasses` (with `inspect`)
    would be a third of the filter's import time (docs/design.md, "Start-up").
    """

    __slots__ = ()

    def __new__(cls, oid: str, size: int, version: str = MLX_VERSION) -> Pointer:
        if not is_valid_oid(oid):
            raise ValueError(f"invalid oid {oid!r}")
        if type(size) is not int or not 0 <= size <= MAX_OBJECT_SIZE:
            raise ValueError(f"invalid size {size!r}")
        if version not in KNOWN_VERSIONS:
            raise ValueError(f"unknown pointer version {version!r}")
        return super().__new__(cls, oid, size, version)

    @property
    def is_lfs(self) -> bool:
        return self.version == LFS_VERSION

    @property
    def short_oid(self) -> str:
        return self.oid[:10]

    def encode(self) -> bytes:
        """The canonical bytes of this pointer: version first, other keys sorted, LF ends."""
        return (f"version {self.version}\noid sha256:{self.oid}\nsize {self.size}\n").encode("ascii")

    def as_mlx(self) -> Pointer:
        """The same object under gitmlx's own version line (what `clean` emits)."""
        # Itself when it already is one: callers dedup 100,000 pointers through this.
        return self if self.version == MLX_VERSION else Pointer(self.oid, self.size, MLX_VERSION)


def looks_like_pointer(prefix: bytes) -> bool:
    """Cheap test on a prefix: could these bytes start a pointer at all?

    Lets callers that stream avoid buffering content that cannot be a pointer.
    """
    for start in (_MLX_PREFIX, _LFS_PREFIX):
        n = min(len(prefix), len(start))
        if prefix[:n] == start[:n]:
            return True
    return False


def parse(data: bytes) -> Pointer | None:
    """Parse `data` as a pointer; None unless it is one in its single canonical encoding.

    Accepted: exactly three lines `version V`, `oid sha256:HEX64`, `size N`, each ending
    in LF, V one of the known versions, N decimal without leading zeros. Anything else
    (CRLF, uppercase hex, unknown or extension keys, missing final LF, >= 1024 bytes,
    sizes beyond 2**63-1) is ordinary content.
    """
    if len(data) >= MAX_POINTER_SIZE or not data.startswith(b"version "):
        return None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        return None
    version_line, oid_line, size_line = lines[:3]
    version = version_line[len("version ") :]
    # The constants themselves, not the slice: a scan of 100,000 pointers would hold
    # 100,000 copies of the same version string.
    if version == MLX_VERSION:
        version = MLX_VERSION
    elif version == LFS_VERSION:
        version = LFS_VERSION
    elif version not in KNOWN_VERSIONS:
        return None
    if not oid_line.startswith("oid sha256:") or not size_line.startswith("size "):
        return None
    oid = oid_line[len("oid sha256:") :]
    size_text = size_line[len("size ") :]
    if not is_valid_oid(oid) or _SIZE_RE.fullmatch(size_text) is None:
        return None
    size = int(size_text)
    if size > MAX_OBJECT_SIZE:
        return None
    return Pointer(oid, size, version)


def describe_invalid(data: bytes) -> str | None:
    """Why `data` starts like a pointer but is not one; None when it is not pointer-like.

    Used only for warnings: content that merely resembles a pointer is still content.
    """
    if parse(data) is not None or not (data.startswith(_MLX_PREFIX) or data.startswith(_LFS_PREFIX)):
        return None
    if len(data) >= MAX_POINTER_SIZE:
        return "longer than 1023 bytes"
    text = data.decode("ascii", "replace")
    for line in text.split("\n"):
        if line.startswith("oid ") and not (
            line.startswith("oid sha256:") and is_valid_oid(line[len("oid sha256:") :])
        ):
            return "oid is not 'sha256:' and 64 lowercase hex digits"
        if line.startswith("size "):
            value = line[len("size ") :]
            if _SIZE_RE.fullmatch(value) is None or int(value) > MAX_OBJECT_SIZE:
                return "size is not a decimal number below 2^63"
    return "not in the canonical encoding (three LF-terminated lines: version, oid, size)"
