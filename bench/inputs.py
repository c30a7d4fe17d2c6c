"""Input data: pseudo-random (incompressible) files, generated once per size and reused.

Files are written in 1 MiB chunks from os.urandom (never held in memory whole) and hashed
while they are written. A data set is complete only once its manifest (`<name>.json`,
with every file's size and SHA-256) exists, so an interrupted generation is redone.
The data directory outlives a run (default /tmp/gitmlx-bench-data) so later runs skip
generation; both tools always read the very same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    rel: str  # path relative to the data set's root (the path used inside the repo)
    size: int
    sha256: str


@dataclass(frozen=True)
class DataSet:
    name: str
    root: Path  # a directory; files live at root / rel
    files: tuple[DataFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(CHUNK, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _load(manifest: Path, root: Path, name: str) -> DataSet | None:
    try:
        raw = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    files = tuple(DataFile(**f) for f in raw["files"])
    for f in files:
        try:
            if (root / f.rel).stat().st_size != f.size:
                return None
        except OSError:
            return None
    return DataSet(name, root, files)


def ensure(data_dir: Path, name: str, layout: list[tuple[str, int]], log=print) -> DataSet:
    """The data set `name` with files `layout` [(rel, size)], generating it if needed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    root = data_dir / name
    manifest = data_dir / f"{name}.json"
    existing = _load(manifest, root, name)
    if existing is not None and [(f.rel, f.size) for f in existing.files] == layout:
        return existing
    manifest.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    total = sum(size for _, size in layout)
    log(f"  generating {name}: {len(layout)} file(s), {total / CHUNK:.0f} MiB of random data in {root}")
    files = []
    for rel, size in layout:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        files.append(DataFile(rel, size, _write_random(path, size)))
    manifest.write_text(json.dumps({"files": [f.__dict__ for f in files]}, indent=0))
    return DataSet(name, root, tuple(files))


def one_file(data_dir: Path, size: int, log=print) -> DataSet:
    """One file `model.bin` of `size` bytes."""
    return ensure(data_dir, f"one-{size}", [("model.bin", size)], log)


def many_files(data_dir: Path, count: int, size: int, log=print) -> DataSet:
    """`count` files `shards/f00000.bin`... of `size` bytes each, all different."""
    layout = [(f"shards/f{i:05d}.bin", size) for i in range(count)]
    return ensure(data_dir, f"many-{count}x{size}", layout, log)
