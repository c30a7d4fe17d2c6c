"""sha1 and sha256 of bytes in memory, without loading OpenSSL for a few KiB.

Owns: choosing the implementation. hashlib's first import loads OpenSSL's libcrypto, which
costs a filter process more than all the hashing a `git add` or `git commit` of a few small
files does (bench/README.md, "Start-up"). CPython's built-in sha1 and sha256 load at no
cost but are several times slower per byte, so they take small inputs only, and only for
the first BUILTIN_BUDGET bytes of a process: past that, or once hashlib is loaded anyway
(streams always use it), hashlib does the work. Both give the same digests.
Must not: do I/O, or hash streams (callers that hash as bytes arrive use hashlib).
"""

from __future__ import annotations

import sys

#: Inputs up to this size may use the built-in implementations.
SMALL = 256 * 1024
#: Bytes the built-ins hash before hashlib takes over: the built-ins' extra time on them
#: stays below what loading OpenSSL costs.
BUILTIN_BUDGET = 1024 * 1024

_budget = BUILTIN_BUDGET

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from hashlib import _Hash


def new(name: str, data: bytes | bytearray | memoryview = b"") -> _Hash:
    """A hash object of `name` ("sha1" or "sha256") over `data`, as `hashlib.new` gives."""
    global _budget
    size = memoryview(data).nbytes
    if size <= SMALL and size <= _budget and "hashlib" not in sys.modules:
        builtin = _builtin(name)
        if builtin is not None:
            _budget -= size
            return builtin(data)
    import hashlib

    return hashlib.new(name, data)


def _builtin(name: str):  # -> a hash constructor, or None; not annotated: typing
    try:
        if name == "sha1":
            from _sha1 import sha1

            return sha1
        if name == "sha256":
            try:
                from _sha2 import sha256  # Python 3.12 and later
            except ImportError:
                from _sha256 import sha256
            return sha256
    except ImportError:
        pass  # a Python built without them: hashlib has OpenSSL's
    return None


def git_blob_id(data: bytes, object_format: str = "sha1") -> bytes:
    """git's object id of a blob holding `data` ("blob <len>\\0" + data, hashed; raw bytes)."""
    return new(object_format, b"blob %d\0" % len(data) + data).digest()
