"""Small inputs are hashed without loading OpenSSL, to the same digests hashlib gives.

A fresh interpreter does the hashing (in this one, hashlib is loaded already, and then
`digests` rightly hands everything to it); hashlib here is the oracle."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from gitmlx.osutil import digests

PROBE = """\
import json, sys
from gitmlx.osutil import digests
out = []
for name, size in json.loads(sys.argv[1]):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    out.append([digests.new(name, memoryview(data)).hexdigest(), "hashlib" in sys.modules])
print(json.dumps(out))
"""


def hashed(cases: list[list], cwd) -> list[bool]:
    """Hash `cases` ([name, size]) in a fresh interpreter; check each digest against
    hashlib's, and return whether OpenSSL was loaded after each."""
    run = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(cases)], capture_output=True, text=True, check=True, cwd=cwd
    )
    got = json.loads(run.stdout)
    for (name, size), (hexdigest, _) in zip(cases, got, strict=True):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        assert hexdigest == hashlib.new(name, data).hexdigest(), (name, size)
    return [openssl for _, openssl in got]


def test_the_same_digests_with_openssl_loaded_only_past_the_small_ones(tmp_path) -> None:
    cases = [["sha256", 0], ["sha1", 1], ["sha256", 4096], ["sha1", 100_000], ["sha256", digests.SMALL]]
    cases += [["sha256", digests.SMALL + 1], ["sha1", 10]]
    assert hashed(cases, tmp_path) == [False] * 5 + [True] * 2


def test_openssl_takes_over_once_the_builtins_hashed_their_budget(tmp_path) -> None:
    """Many small files (a `git add` of thousands) are not all hashed the slower way."""
    size = digests.SMALL - 1
    within = digests.BUILTIN_BUDGET // size
    assert hashed([["sha256", size]] * (within + 1), tmp_path) == [False] * within + [True]
