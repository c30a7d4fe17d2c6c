#!/usr/bin/env python3
"""gitmlx vs Git LFS: the same workloads through both tools, interleaved, in sealed sandboxes.

    python bench/run.py                    # full suite (1 GiB, 2,000 x 128 KiB), 3 reps
    python bench/run.py --quick            # 128 MiB and 200 x 128 KiB, 3 reps (~2 min)
    python bench/run.py --workload clone-1g --workload status-after-clone --reps 5
    python bench/run.py --list

Prints a Markdown table of medians and gitmlx/LFS ratios and writes every raw measurement
to bench/results/<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import workloads as w  # noqa: E402
from sealed import BenchError, make_tools, write_wrapper  # noqa: E402

MIB = 1 << 20

WORKLOADS = {
    "floor": "coreutils cp + sha256sum of the inputs (context: the I/O floor)",
    "add-1g": "`git add` of one large file",
    "add-2000": "`git add` of many small files",
    "clone-1g": "fresh `git clone` (smudge) of a remote holding one large file",
    "clone-2000": "fresh `git clone` (smudge) of a remote holding many small files",
    "clone-1g-thin": "gitmlx alone: `git clone -c mlx.thin=true` of the large file (compare with floor)",
    "status-after-clone": "the first `git status` right after cloning the large file",
    "push-1g": "`git add` + `git commit` + `git push` of a new large file",
    "push-2000": "`git add` + `git commit` + `git push` of many small files",
    "small-20000": "gitmlx alone: push and clone of 20,000 x 16 KiB files (compare with its reference row)",
}


def run_selected(b: w.Bench, selected: list[str]) -> list[str]:
    """Runs the workloads in the canonical order; returns the errors (the run goes on)."""
    plan = []
    if "floor" in selected:
        plan.append(("floor", lambda: w.floor(b, "floor")))
    if "add-1g" in selected:
        plan.append(("add-1g", lambda: w.add(b, "add-1g", b.big())))
    if "add-2000" in selected:
        plan.append(("add-2000", lambda: w.add(b, "add-2000", b.many())))
    big_steps = {k: v for k, v in (("clone", "clone-1g"), ("status", "status-after-clone")) if v in selected}
    if big_steps:
        plan.append((" + ".join(big_steps.values()), lambda: w.clone(b, "clone-1g", b.big(), big_steps)))
    if "clone-1g-thin" in selected:
        plan.append(("clone-1g-thin", lambda: w.clone(b, "clone-1g-thin", b.big(), {"clone": "clone-1g-thin"}, True)))
    if "clone-2000" in selected:
        plan.append(("clone-2000", lambda: w.clone(b, "clone-2000", b.many(), {"clone": "clone-2000"})))
    if "push-1g" in selected:
        plan.append(("push-1g", lambda: w.push(b, "push-1g", b.big())))
    if "push-2000" in selected:
        plan.append(("push-2000", lambda: w.push(b, "push-2000", b.many())))
    if "small-20000" in selected:
        plan.append(("small-20000", lambda: w.small_files(b, "small-20000", b.small())))
    errors = []
    for name, fn in plan:
        b.log(f"== {name}")
        start = time.monotonic()
        try:
            fn()
        except (BenchError, OSError, subprocess.CalledProcessError) as exc:
            errors.append(f"{name}: {exc}")
            b.log(f"   FAILED: {exc}")
            if not isinstance(exc, BenchError):
                b.log(traceback.format_exc())
        b.log(f"   ({time.monotonic() - start:.0f} s)")
    return errors


def real_git_mlx() -> Path:
    """The `git-mlx` script itself, not a pyenv shim: prefer the one beside this interpreter."""
    beside = Path(sys.executable).parent / "git-mlx"
    if beside.is_file():
        return beside
    found = shutil.which("git-mlx")
    if found is None:
        sys.exit("git-mlx is not installed (pip install -e .)")
    return Path(found)


def capture(*argv: str) -> str:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def meta(args: argparse.Namespace, tools: dict, sizes: w.Sizes, scratch: Path) -> dict:
    mem = ""
    try:
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    repo = HERE.parent
    return {
        "argv": sys.argv,
        "quick": args.quick,
        "reps": args.reps,
        "sizes": asdict(sizes),
        "poll_ms": args.poll_ms,
        "wrappers": not args.no_wrappers,
        "remote_dir": str(args.remote_dir) if args.remote_dir else None,
        "git": capture("git", "--version"),
        "git_lfs": capture(str(tools["lfs"].exe), "version"),
        "git_mlx": str(tools["mlx"].exe),
        "gitmlx_commit": capture("git", "-C", str(repo), "rev-parse", "HEAD"),
        "gitmlx_dirty": bool(capture("git", "-C", str(repo), "status", "--porcelain", "--", "gitmlx", "hooks")),
        # identifies uncommitted gitmlx sources: sha256 of `git diff HEAD` + untracked file names
        "gitmlx_worktree_sha256": hashlib.sha256(
            (
                capture("git", "-C", str(repo), "diff", "HEAD", "--", "gitmlx", "hooks")
                + capture("git", "-C", str(repo), "ls-files", "--others", "--exclude-standard", "--", "gitmlx")
            ).encode()
        ).hexdigest(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory": mem,
        "scratch": str(scratch),
        "filesystem": capture("df", "-T", str(scratch)).splitlines()[-1:],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (128 MiB, 200 files): a ~2 minute smoke run")
    p.add_argument("--workload", action="append", metavar="NAME", help="run only NAME (repeatable, or a,b,c)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per tool (default 3, at least 1)")
    p.add_argument("--big-mib", type=int, help="size of the large file (default 1024, quick 128)")
    p.add_argument("--many", type=int, help="number of small files (default 2000, quick 200)")
    p.add_argument("--many-kib", type=int, default=128, help="size of each small file (default 128)")
    p.add_argument("--small", type=int, help="files in the small-20000 workload (default 20000, quick 2000)")
    p.add_argument("--small-kib", type=int, default=16, help="size of each of those files (default 16)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "gitmlx-bench-data",
        help="where generated inputs are kept and reused (default /tmp/gitmlx-bench-data)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="parent of the scratch folder (default /tmp); needs ~8 GiB free for the full suite",
    )
    p.add_argument(
        "--remote-dir",
        type=Path,
        help="put the bare remotes here, e.g. /dev/shm: on another filesystem Git LFS cannot hard-link "
        "objects into and out of a file:// remote, so push/clone really copy (default: beside the repos)",
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (sandboxes are still emptied)")
    p.add_argument("--poll-ms", type=float, default=20.0, help="RSS poller interval (default 20 ms)")
    p.add_argument("--no-wrappers", action="store_true", help="no /usr/bin/time wrappers around git-mlx/git-lfs")
    p.add_argument("--results", type=Path, default=HERE / "results", help="folder for the JSON (default bench/results)")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = p.parse_args(argv)

    if args.list:
        for name, what in WORKLOADS.items():
            print(f"{name:20s} {what}")
        return 0
    selected = list(WORKLOADS)
    if args.workload:
        selected = [n for arg in args.workload for n in arg.split(",") if n]
        unknown = [n for n in selected if n not in WORKLOADS]
        if unknown:
            p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    if args.reps < 1:
        p.error("--reps must be at least 1")
    sizes = w.Sizes(
        big=(args.big_mib or (128 if args.quick else 1024)) * MIB,
        many_count=args.many or (200 if args.quick else 2000),
        many_size=args.many_kib * 1024,
        small_count=args.small or (2000 if args.quick else 20000),
        small_size=args.small_kib * 1024,
    )
    git_lfs = shutil.which("git-lfs")
    if git_lfs is None:
        sys.exit("git-lfs is not installed")
    tools = make_tools(real_git_mlx(), Path(git_lfs))

    args.work_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="gitmlx-bench-", dir=args.work_dir))
    wrappers = None
    if not args.no_wrappers:
        wrappers = {key: write_wrapper(scratch / "wrappers" / key, tool) for key, tool in tools.items()}
    bench = w.Bench(
        root=scratch,
        tools=[tools["mlx"], tools["lfs"]],
        reps=args.reps,
        sizes=sizes,
        data_dir=args.data_dir,
        wrappers=wrappers,
        poll_interval=args.poll_ms / 1000,
        remote_dir=args.remote_dir,
    )
    info = meta(args, tools, sizes, scratch)
    print(
        f"gitmlx bench: {', '.join(selected)}; {args.reps} reps; large file {sizes.big // MIB} MiB; "
        f"{sizes.many_count} x {sizes.many_size // 1024} KiB; scratch {scratch}"
    )
    print(
        f"  {info['git']}; {info['git_lfs']}; git-mlx {info['git_mlx']} (commit {info['gitmlx_commit'][:10]}"
        f"{', dirty' if info['gitmlx_dirty'] else ''})"
    )
    started = time.monotonic()
    try:
        errors = run_selected(bench, selected)
    finally:
        if args.remote_dir is not None:
            shutil.rmtree(args.remote_dir / scratch.name, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - started

    labels = {
        "add-1g": f"add-{sizes.big_label}",
        "clone-1g": f"clone-{sizes.big_label}",
        "push-1g": f"push-{sizes.big_label}",
        "status-after-clone": f"status-after-clone-{sizes.big_label}",
        "add-2000": f"add-{sizes.many_count}",
        "clone-2000": f"clone-{sizes.many_count}",
        "push-2000": f"push-{sizes.many_count}",
        "small-20000": f"small-{sizes.small_count}x{sizes.small_size // 1024}k",
    }
    rows = report.summarize(bench.records)
    table = report.markdown(rows, labels)
    print()
    print(f"Medians of {args.reps} interleaved reps; RSS columns: peak (max over reps) in MiB. ({elapsed:.0f} s)")
    print(table)
    for line in report.against_reference(rows, labels):
        print(line)
    notes = report.refilter_notes(rows, labels) + report.cross_check(rows)
    for note in notes:
        print(f"note: {note}")
    for err in errors:
        print(f"ERROR: {err.splitlines()[0]}")

    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "meta": {**info, "elapsed_s": elapsed, "labels": labels},
                "summary": rows,
                "records": [asdict(r) for r in bench.records],
                "errors": errors,
                "notes": notes,
            },
            indent=1,
        )
    )
    print(f"\nraw results: {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
