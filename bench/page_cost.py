#!/usr/bin/env python3
"""What a write into the page cache costs here, into fresh memory and into memory just freed.

    python bench/page_cost.py                 # 1 GiB, 3 rounds, in a temporary folder
    python bench/page_cost.py --mib 512 --dir /mnt/scratch

Every round writes `--mib` MiB into a new file without freeing anything first ("fresh":
the kernel takes pages that have been free for a while), syncs, deletes the file, and
writes the same amount again at once ("recycled": the pages the delete just freed), kept
until the end. It prints the wall and system time of each write.

Why this is a bench of its own: on a VM whose host takes back the memory the guest leaves
free (virtio-balloon free page reporting, as on this Firecracker machine), the first write
into such a page costs the host a fault, and the guest sees it as system time in the copy
into the page cache. Every step of every benchmark here that writes new bytes pays it, on
both sides of a comparison, and how much depends on what was freed just before: read the
difference between the two rows before reading any write-heavy figure (bench/README.md,
"Caveats").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024


def timed_write(path: Path, mib: int, block: bytes) -> tuple[float, float]:
    """Write `mib` MiB to a new file: (wall seconds, system seconds)."""
    before, started = os.times(), time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for _ in range(mib):
            os.write(fd, block)
    finally:
        os.close(fd)
    return time.perf_counter() - started, os.times().system - before.system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="MiB per write (default 1024)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="where to write (default: a temporary folder)")
    args = parser.parse_args(argv)
    block = os.urandom(MIB)
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        print(f"{'round':>5}  {'fresh wall':>10} {'sys':>6}  {'recycled wall':>13} {'sys':>6}")
        for i in range(1, args.rounds + 1):
            first, second = Path(scratch, f"fresh-{i}"), Path(scratch, f"recycled-{i}")
            fresh = timed_write(first, args.mib, block)
            os.sync()
            first.unlink()
            recycled = timed_write(second, args.mib, block)
            os.sync()  # kept until the end: the next round's fresh write must not reuse its pages
            cells = f"{fresh[0]:>9.2f}s {fresh[1]:>5.2f}s  {recycled[0]:>12.2f}s {recycled[1]:>5.2f}s"
            print(f"{i:>5}  {cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
