"""Summaries of the raw records: medians, gitmlx/LFS ratios, peak RSS; a Markdown table."""

from __future__ import annotations

import statistics
from collections import defaultdict

from workloads import Record

TOOL_NAMES = {"mlx": "git-mlx", "lfs": "git-lfs"}


def git_rss(rss: dict[str, int]) -> int:
    """Peak RSS of git itself: any `git*` process that is not one of the tools."""
    return max((v for k, v in rss.items() if k.startswith("git") and k not in TOOL_NAMES.values()), default=0)


def summarize(records: list[Record]) -> list[dict]:
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    order: list[tuple[str, str]] = []
    for r in records:
        groups[(r.workload, r.step, r.tool)].append(r)
        if (r.workload, r.step) not in order:
            order.append((r.workload, r.step))
    rows = []
    for workload, step in order:
        row: dict = {"workload": workload, "step": step}
        for tool in ("mlx", "lfs", "floor"):
            rs = groups.get((workload, step, tool))
            if not rs:
                continue
            secs = [r.seconds for r in rs]
            entry = {
                "n": len(rs),
                "median_s": statistics.median(secs),
                "min_s": min(secs),
                "max_s": max(secs),
                "peak_git_kib": max(git_rss(r.rss_kib) for r in rs),
            }
            if tool in TOOL_NAMES:
                name = TOOL_NAMES[tool]
                entry["peak_tool_kib"] = max(r.rss_kib.get(name, 0) for r in rs)
                entry["peak_tool_wrapper_kib"] = max(r.wrapper_rss_kib.get(name, 0) for r in rs)
                entry["tool_processes"] = max(r.processes.get(name, 0) for r in rs)
                # reps in which git started the long-running filter (for status / commit: git's
                # racy-clean check re-read a file through the clean filter)
                entry["filter_runs"] = sum(f"{name} filter-process" in r.commands for r in rs)
            row[tool] = entry
        if "mlx" in row and "lfs" in row:
            row["ratio"] = row["mlx"]["median_s"] / row["lfs"]["median_s"]
        rows.append(row)
    # A multi-step workload (push) also gets a total row: the per-rep sum of its steps.
    by_workload: dict[str, list[str]] = defaultdict(list)
    for workload, step in order:
        by_workload[workload].append(step)
    for workload, steps in by_workload.items():
        if len(steps) < 2 or not any((workload, step, t) in groups for step in steps for t in ("mlx", "lfs")):
            continue
        total: dict = {"workload": workload, "step": "total"}
        for tool in ("mlx", "lfs"):
            per_rep: dict[int, float] = defaultdict(float)
            for step in steps:
                for r in groups.get((workload, step, tool), []):
                    per_rep[r.rep] += r.seconds
            if per_rep:
                secs = list(per_rep.values())
                total[tool] = {
                    "n": len(secs),
                    "median_s": statistics.median(secs),
                    "min_s": min(secs),
                    "max_s": max(secs),
                }
        if "mlx" in total and "lfs" in total:
            total["ratio"] = total["mlx"]["median_s"] / total["lfs"]["median_s"]
        last = max(i for i, row in enumerate(rows) if row["workload"] == workload)
        rows.insert(last + 1, total)
    return rows


def _mib(kib: int | None) -> str:
    return "–" if not kib else f"{kib / 1024:.0f}"


def _secs(entry: dict | None) -> str:
    if entry is None:
        return "–"
    return f"{entry['median_s']:.2f}"


def markdown(rows: list[dict], labels: dict[str, str]) -> str:
    head = (
        "| workload | step | gitmlx s | Git LFS s | gitmlx/LFS "
        "| git MiB (mlx) | git-mlx MiB | git MiB (LFS) | git-lfs MiB |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [head]
    floors = []
    for row in rows:
        if "floor" in row:
            floors.append(row)
            continue
        mlx, lfs = row.get("mlx"), row.get("lfs")
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else "–"
        lines.append(
            f"| {labels.get(row['workload'], row['workload'])} | {row['step']} | {_secs(mlx)} | {_secs(lfs)} | "
            f"{ratio} | {_mib(mlx and mlx.get('peak_git_kib'))} | {_mib(mlx and mlx.get('peak_tool_kib'))} | "
            f"{_mib(lfs and lfs.get('peak_git_kib'))} | {_mib(lfs and lfs.get('peak_tool_kib'))} |"
        )
    if floors:
        lines += ["", "| floor (no gitmlx) | median s | min s | max s |", "| --- | ---: | ---: | ---: |"]
        for row in floors:
            f = row["floor"]
            lines.append(f"| {row['step']} | {f['median_s']:.2f} | {f['min_s']:.2f} | {f['max_s']:.2f} |")
    return "\n".join(lines)


_COPY = "copy to the remote's file system + sha256"
#: What each workload's `reference` step does, when it is not `_COPY`.
REFERENCES = {"clone-1g-thin": "copy onto the clone's file system + sha256"}


def against_reference(rows: list[dict], labels: dict[str, str]) -> list[str]:
    """gitmlx-only workloads that time a physical reference in the same run (a `reference`
    step recorded as "floor"): each gitmlx step's median, and each other floor step's (what git
    alone costs), over the reference's median."""
    refs = {row["workload"]: row["floor"] for row in rows if row["step"] == "reference" and "floor" in row}
    lines = []
    for row in rows:
        ref = refs.get(row["workload"])
        timed = row.get("mlx") or (row.get("floor") if row["step"] != "reference" else None)
        if ref and timed and "lfs" not in row and row["step"] != "total":
            ratio = timed["median_s"] / ref["median_s"]
            lines.append(
                f"{labels.get(row['workload'], row['workload'])} {row['step']}: {timed['median_s']:.2f} s"
                f" = {ratio:.2f}x the reference ({ref['median_s']:.2f} s: {REFERENCES.get(row['workload'], _COPY)})"
            )
    return lines


def refilter_notes(rows: list[dict], labels: dict[str, str]) -> list[str]:
    """For status and commit, how often git ran the clean filter again (racy index entries)."""
    notes = []
    for row in rows:
        if row["step"] not in ("git status", "git commit"):
            continue
        parts = []
        for tool in ("mlx", "lfs"):
            e = row.get(tool)
            if e and "filter_runs" in e:
                parts.append(f"{TOOL_NAMES[tool]} in {e['filter_runs']}/{e['n']} reps")
        if parts:
            label = labels.get(row["workload"], row["workload"])
            notes.append(f"{label} {row['step']}: git re-ran the clean filter: {', '.join(parts)}")
    return notes


def cross_check(rows: list[dict]) -> list[str]:
    """Where the exit-time wrapper saw much more than the poller: worth a look."""
    notes = []
    for row in rows:
        for tool in ("mlx", "lfs"):
            e = row.get(tool)
            if not e or not e.get("peak_tool_wrapper_kib"):
                continue
            poll, wrap = e.get("peak_tool_kib", 0), e["peak_tool_wrapper_kib"]
            if wrap > 1.25 * poll + 4096:
                notes.append(
                    f"{row['workload']} {row['step']} {TOOL_NAMES[tool]}: wrapper (tool + its children, at exit) "
                    f"{wrap / 1024:.0f} MiB vs poller {poll / 1024:.0f} MiB"
                )
    return notes
