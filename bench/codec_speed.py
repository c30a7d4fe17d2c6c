"""Speed and size of codec 2 (byte-grouped zstd) against zstd alone, one core.

    python bench/codec_speed.py [--reps N]

Cuts the all-MiniLM-L6-v2 fp32 `model.safetensors` (dedup.minilm_model) and 64 MiB of
normal float32 (dedup.py's float32 workload) into gitmlx's chunks, encodes them as a push
does (codec.Sampler), and decodes them as a download does (codec.decode). Times are the
process's CPU time (time.process_time, best of N), so other load on the machine inflates
them less than wall time would; MB/s are of raw bytes. Decoding is timed without numpy,
then with numpy imported (codec 2 uses it only when the process has imported it), and
the extended-slice assignment alone (`out[j::W] = plane`, the pure-Python scatter) is
timed on its own.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import dedup  # noqa: E402 - bench/ is not a package

from gitmlx.format import chunking, codec  # noqa: E402


def best(reps: int, job) -> float:
    times = []
    for _ in range(reps):
        started = time.process_time()
        job()
        times.append(time.process_time() - started)
    return min(times)


def measure(name: str, data: bytes, reps: int) -> dict:
    chunks = [bytes(c) for c in chunking.chunks(io.BytesIO(data))]
    row: dict = {"workload": name, "bytes": len(data)}
    for grouped in (False, True):
        label = "grouped" if grouped else "zstd"
        encoded: list = []

        def encode(grouped: bool = grouped, encoded: list = encoded) -> None:
            sampler = codec.Sampler(grouped)
            encoded[:] = [(*sampler.encode(c), len(c)) for c in chunks]

        row[f"{label}_encode_mbs"] = len(data) / best(max(1, reps // 3), encode) / 1e6
        row[f"{label}_ratio"] = sum(len(s) for _, s, _ in encoded) / len(data)

        def decode(encoded: list = encoded) -> None:
            for kind, stored, raw in encoded:
                codec.decode(kind, stored, raw)

        assert "numpy" not in sys.modules
        row[f"{label}_decode_mbs"] = len(data) / best(reps, decode) / 1e6
        if grouped:
            planes = [(stored[0], raw) for kind, stored, raw in encoded if kind == 2]

            def scatter(planes: list = planes) -> None:
                for width, raw in planes:
                    count = raw // width
                    out = bytearray(raw)
                    plane = bytes(count)
                    for j in range(width):
                        out[j : count * width : width] = plane

            row["scatter_only_mbs"] = sum(r for _, r in planes) / best(reps, scatter) / 1e6
            row["grouped_chunks"] = len(planes) / len(chunks)
            row["encoded"] = encoded
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    fp32 = Path(dedup.tempfile.mkdtemp(prefix="gitmlx-bench-codec-")) / "fp32.bin"
    # In a child: write_float32 imports numpy, which this process must not have yet.
    code = f"import dedup; dedup.write_float32(dedup.Path({str(fp32)!r}), 64 * dedup.MiB, seed=1)"
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent, check=True)
    rows = [
        measure("MiniLM fp32 safetensors", dedup.minilm_model().read_bytes(), args.reps),
        measure("normal float32, 64 MiB", fp32.read_bytes(), args.reps),
    ]
    fp32.unlink()
    import numpy  # noqa: F401 - from here on codec 2 decodes with numpy

    for row in rows:
        encoded = row.pop("encoded")

        def decode(encoded: list = encoded) -> None:
            for kind, stored, raw in encoded:
                codec.decode(kind, stored, raw)

        row["grouped_decode_numpy_mbs"] = row["bytes"] / best(args.reps, decode) / 1e6
    print(
        "| workload | zstd: stored | zstd: encode / decode MB/s | grouped: stored | grouped: encode / "
        "decode MB/s | decode with numpy | scatter alone |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['workload']} | {r['zstd_ratio']:.3f} | {r['zstd_encode_mbs']:.0f} / {r['zstd_decode_mbs']:.0f} | "
            f"{r['grouped_ratio']:.3f} ({100 * r['grouped_chunks']:.0f}% of chunks codec 2) | "
            f"{r['grouped_encode_mbs']:.0f} / {r['grouped_decode_mbs']:.0f} | {r['grouped_decode_numpy_mbs']:.0f} | "
            f"{r['scatter_only_mbs']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
