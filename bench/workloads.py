"""The workloads. Each runs both tools, interleaved (rep 0: mlx, lfs; rep 1: mlx, lfs; ...),
and records one `Record` per timed command. Set-up steps (repo init, copying inputs into
the work tree, the push that fills a remote before a clone) are never timed, and every
timed step is followed by an untimed check that the tool really did the job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import inputs
from procmon import Measured, measure
from sealed import SYSTEM_PATH, BenchError, Sandbox, Tool

MIB = 1 << 20
LFS_VERSION_LINE = "version https://git-lfs.github.com/spec/v1"


@dataclass(frozen=True)
class Sizes:
    big: int  # bytes of the one large file
    many_count: int
    many_size: int
    small_count: int = 20000  # the many-small-files workload (gitmlx against the floor)
    small_size: int = 16 * 1024

    @property
    def big_label(self) -> str:
        return f"{self.big // (1 << 30)}g" if self.big % (1 << 30) == 0 else f"{self.big // MIB}m"


@dataclass
class Record:
    workload: str
    step: str
    tool: str  # "mlx" | "lfs" | "floor"
    rep: int
    seconds: float
    rss_kib: dict[str, int]
    processes: dict[str, int]
    commands: dict[str, int]
    wrapper_rss_kib: dict[str, int]
    samples: int
    notes: dict[str, object] = field(default_factory=dict)


@dataclass
class Bench:
    root: Path
    tools: list[Tool]
    reps: int
    sizes: Sizes
    data_dir: Path
    wrappers: dict[str, Path] | None
    poll_interval: float
    remote_dir: Path | None = None  # where bare remotes go (default: inside each sandbox)
    records: list[Record] = field(default_factory=list)
    log: Callable[[str], None] = print

    def sandboxes(self, workload: str) -> dict[str, Sandbox]:
        boxes = {}
        for tool in self.tools:
            wrappers = self.wrappers[tool.key] if self.wrappers else None
            remotes = self.remote_dir / self.root.name / workload / tool.key if self.remote_dir else None
            box = Sandbox(self.root / workload / tool.key, tool, wrappers, self.poll_interval, remotes)
            boxes[tool.key] = box.create()
        return boxes

    def record(self, workload: str, step: str, tool: str, rep: int, m: Measured, **notes: object) -> None:
        r = Record(
            workload=workload,
            step=step,
            tool=tool,
            rep=rep,
            seconds=m.seconds,
            rss_kib=m.rss_kib,
            processes=m.processes,
            commands=m.commands,
            wrapper_rss_kib=m.wrapper_rss_kib,
            samples=m.samples,
            notes=notes,
        )
        self.records.append(r)
        rss = ", ".join(f"{k} {v / 1024:.0f}M" for k, v in sorted(m.rss_kib.items(), key=lambda kv: -kv[1])[:3])
        ran = sorted(c.split(" ", 1)[1] for c in m.commands if c.startswith(("git-mlx ", "git-lfs ")))
        self.log(f"    rep {rep} {tool:5s} {step:12s} {m.seconds:8.3f} s  peak RSS: {rss}  tool ran: {', '.join(ran)}")

    def big(self) -> inputs.DataSet:
        return inputs.one_file(self.data_dir, self.sizes.big, self.log)

    def many(self) -> inputs.DataSet:
        return inputs.many_files(self.data_dir, self.sizes.many_count, self.sizes.many_size, self.log)

    def small(self) -> inputs.DataSet:
        return inputs.many_files(self.data_dir, self.sizes.small_count, self.sizes.small_size, self.log)


# -- repository helpers ---------------------------------------------------------------------


def init_repo(sb: Sandbox, repo: Path, remote: Path | None = None) -> None:
    """A repo tracking `*.bin` with the tool's hooks; with `remote`, a fresh bare repo as
    `origin` (a file:// URL) that already holds the first commit."""
    sb.git("init", "-q", str(repo), cwd=sb.root)
    sb.git(sb.tool.sub, "install", cwd=repo)  # inside a repo: the hooks too
    sb.git(sb.tool.sub, "track", "*.bin", cwd=repo)
    sb.git("add", ".gitattributes", cwd=repo)
    sb.git("commit", "-q", "-m", "Track *.bin", cwd=repo)
    if remote is not None:
        sb.git("init", "-q", "--bare", str(remote), cwd=sb.root)
        sb.git("remote", "add", "origin", remote.as_uri(), cwd=repo)
        sb.git("push", "-q", "-u", "origin", "main", cwd=repo)


def copy_in(ds: inputs.DataSet, repo: Path) -> None:
    """Copy the input into the work tree (fresh mtimes, like files a user just wrote)."""
    for f in ds.files:
        dest = repo / f.rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ds.root / f.rel, dest)


def top_paths(ds: inputs.DataSet) -> list[str]:
    """What to pass to `git add`: the top-level names of the data set."""
    return sorted({f.rel.split("/", 1)[0] for f in ds.files})


def parse_pointer(text: str) -> tuple[str, str, int] | None:
    lines = text.splitlines()
    if not lines or not lines[0].startswith("version "):
        return None
    fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    oid = fields.get("oid", "")
    if not oid.startswith("sha256:") or not fields.get("size", "").isdigit():
        return None
    return lines[0], oid[len("sha256:") :], int(fields["size"])


def verify_staged(sb: Sandbox, repo: Path, ds: inputs.DataSet) -> None:
    """Every data file is staged as a pointer of this tool with the right oid and size."""
    listing = sb.git("ls-files", "-s", "-z", cwd=repo)
    blobs = {}
    for entry in listing.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            blobs[path] = meta.split()[1]
    wanted = list(ds.files)
    missing = [f.rel for f in wanted if f.rel not in blobs]
    if missing:
        raise BenchError(f"[{sb.tool.label}] not staged: {missing[:3]}")
    contents = cat_blobs(sb, repo, [blobs[f.rel] for f in wanted])
    for f in wanted:
        text = contents[blobs[f.rel]]
        parsed = parse_pointer(text)
        if parsed is None:
            raise BenchError(f"[{sb.tool.label}] {f.rel} was staged as content, not a pointer ({len(text)} bytes)")
        version, oid, size = parsed
        if (oid, size) != (f.sha256, f.size):
            raise BenchError(f"[{sb.tool.label}] {f.rel}: pointer says {oid} {size}, expected {f.sha256} {f.size}")
        if (version == LFS_VERSION_LINE) != (sb.tool.key == "lfs"):
            raise BenchError(f"[{sb.tool.label}] {f.rel}: unexpected pointer version line {version!r}")


def cat_blobs(sb: Sandbox, repo: Path, shas: list[str]) -> dict[str, str]:
    """Contents of small blobs, through one `git cat-file --batch`."""
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        env=sb.env,
        input=("\n".join(shas) + "\n").encode(),
        capture_output=True,
        check=True,
    )
    out: dict[str, str] = {}
    buf = proc.stdout
    pos = 0
    while pos < len(buf):
        nl = buf.index(b"\n", pos)
        sha, kind, size = buf[pos:nl].decode().split()
        start = nl + 1
        end = start + int(size)
        if int(size) > 4096:
            out[sha] = f"<{size} bytes>"
        else:
            out[sha] = buf[start:end].decode("utf-8", "replace")
        pos = end + 1
    return out


def verify_worktree(sb: Sandbox, repo: Path, ds: inputs.DataSet) -> None:
    """Every file of the data set is in the work tree with its exact size and SHA-256."""
    for f in ds.files:
        path = repo / f.rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise BenchError(f"[{sb.tool.label}] {f.rel} missing after clone") from None
        if size != f.size:
            raise BenchError(f"[{sb.tool.label}] {f.rel} has {size} bytes after clone, expected {f.size} (a pointer?)")
        if inputs.sha256_file(path) != f.sha256:
            raise BenchError(f"[{sb.tool.label}] {f.rel}: wrong content after clone")


def verify_pushed(sb: Sandbox, remote: Path, ds: inputs.DataSet, name: str) -> None:
    """What was pushed comes back: an untimed fresh clone restores every file exactly.
    (Format-agnostic on purpose: it does not peek into either tool's remote layout.)"""
    dest = sb.root / name
    sb.git("clone", "-q", remote.as_uri(), str(dest), cwd=sb.root)
    try:
        verify_worktree(sb, dest, ds)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


# -- workloads ------------------------------------------------------------------------------


def floor(b: Bench, name: str) -> None:
    """Read + write + hash the inputs once with coreutils (and openssl): the I/O floor any tool pays."""
    work = b.root / name
    work.mkdir(parents=True, exist_ok=True)
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C", "HOME": str(work)}
    big, many = b.big(), b.many()
    big_in, many_in = f'"{big.root}/model.bin"', f'"{many.root}/shards"'
    files = "find out -type f -print0 | xargs -0"
    # coreutils sha256sum does not use the CPU's SHA extensions; openssl does (as do Python's
    # hashlib and Go >= 1.21), so the second row of each pair is the realistic floor.
    cases = [
        (f"{b.sizes.big_label} cp+sha256sum", f"cp {big_in} out && sha256sum out"),
        (f"{b.sizes.big_label} cp+openssl sha256", f"cp {big_in} out && openssl dgst -sha256 out"),
        (f"{b.sizes.many_count} files cp+sha256sum", f"cp -r {many_in} out && {files} sha256sum"),
        (f"{b.sizes.many_count} files cp+openssl sha256", f"cp -r {many_in} out && {files} openssl dgst -sha256"),
    ]
    if shutil.which("openssl", path=SYSTEM_PATH) is None:
        cases = [c for c in cases if "openssl" not in c[0]]
    for rep in range(b.reps):
        for step, script in cases:
            out = work / "out"
            if out.is_dir():
                shutil.rmtree(out)
            out.unlink(missing_ok=True)
            os.sync()
            m = measure(["sh", "-c", script + " > /dev/null"], work, env, work / "commands.log", b.poll_interval)
            if m.returncode:
                raise BenchError(f"floor `{script}` failed")
            b.record(name, step, "floor", rep, m)
    shutil.rmtree(work, ignore_errors=True)


#: Data sets with more files than this keep each rep's repositories until the workload ends.
MANY_FILES = 100


class Leftovers:
    """Folders to delete once a workload's reps are done, not between them.

    ext4 skips inodes deleted in the last 60 s (300 s while their table block is dirty)
    when it allocates new ones (`recently_deleted`, seen in `perf record`): a step that
    creates 2,000 files right after the other tool's rep deleted thousands ran 1.5× slower
    (clone-2000, gitmlx rep 0: 2.15 s, reps 1-2 after Git LFS's deletes: 3.15-3.18 s), and
    the tools do not delete the same number (Git LFS keeps a file per object). Deleting
    those folders only at the end keeps every timed step off that path, for both tools.
    """

    def __init__(self, ds: inputs.DataSet) -> None:
        self.keep = len(ds.files) > MANY_FILES
        self.folders: list[Path] = []

    def remove(self, folder: Path) -> None:
        if self.keep:
            self.folders.append(folder)
        else:
            shutil.rmtree(folder)

    def clear(self) -> None:
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)


def add(b: Bench, name: str, ds: inputs.DataSet) -> None:
    """`git add` of the data set into a fresh repo; only the `git add` is timed."""
    boxes = b.sandboxes(name)
    leftovers = Leftovers(ds)
    for rep in range(b.reps):
        for tool in b.tools:
            sb = boxes[tool.key]
            repo = sb.root / f"repo-{rep}"
            init_repo(sb, repo)
            copy_in(ds, repo)
            m = sb.timed_git("add", *top_paths(ds), cwd=repo)
            verify_staged(sb, repo, ds)
            b.record(name, "git add", tool.key, rep, m)
            leftovers.remove(repo)
    leftovers.clear()
    for sb in boxes.values():
        sb.destroy()


def clone(b: Bench, name: str, ds: inputs.DataSet, steps: dict[str, str], thin: bool = False) -> None:
    """A remote holding `ds` (pushed during set-up), then per rep a fresh `git clone` of it
    (checkout runs the smudge filter) and, right after it, the first `git status`.
    `steps` maps "clone" / "status" to the workload name they are recorded under. `thin`:
    gitmlx alone, cloning with `-c mlx.thin=true` (the work tree is the only local copy)."""
    boxes = b.sandboxes(name)
    for key in [k for k in boxes if thin and k != "mlx"]:
        boxes.pop(key).destroy()
    options = ["-c", "mlx.thin=true"] if thin else []
    leftovers = Leftovers(ds)
    for sb in boxes.values():
        src, remote = sb.root / "src", sb.remotes / "remote.git"
        init_repo(sb, src, remote)
        copy_in(ds, src)
        sb.git("add", *top_paths(ds), cwd=src)
        sb.git("commit", "-q", "-m", "Add data", cwd=src)
        sb.git("push", "-q", "origin", "main", cwd=src)
        leftovers.remove(src)  # only the remote is needed from here on
    for rep in range(b.reps):
        if thin:
            thin_reference(b, boxes["mlx"], ds, steps["clone"], rep)
        for tool in [t for t in b.tools if t.key in boxes]:
            sb = boxes[tool.key]
            remote, dest = sb.remotes / "remote.git", sb.root / f"clone-{rep}"
            m = sb.timed_git("clone", "-q", *options, remote.as_uri(), str(dest), cwd=sb.root)
            status = sb.timed_git("status", cwd=dest) if "status" in steps else None
            verify_worktree(sb, dest, ds)
            dirty = sb.git("status", "--porcelain", cwd=dest).strip()
            if dirty:
                b.log(f"    WARNING [{tool.label}] work tree not clean after clone: {dirty[:200]}")
            if "clone" in steps:
                b.record(steps["clone"], "git clone", tool.key, rep, m, clean_after=not dirty)
            if status is not None:
                b.record(steps["status"], "git status", tool.key, rep, status, clean_after=not dirty)
            leftovers.remove(dest)
    leftovers.clear()
    for sb in boxes.values():
        sb.destroy()


def thin_reference(b: Bench, sb: Sandbox, ds: inputs.DataSet, name: str, rep: int) -> None:
    """The physical reference of a thin clone, timed right before each of its reps (not in
    `floor`'s reps, minutes earlier, so load drift hits both alike): copy the file onto the
    clone's file system and hash it (`cp` + `openssl dgst -sha256`)."""
    out = sb.root / "reference.out"
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C", "HOME": str(sb.root)}
    script = f'cp "{ds.root / ds.files[0].rel}" "{out}" && openssl dgst -sha256 "{out}" > /dev/null'
    os.sync()
    m = measure(["sh", "-c", script], sb.root, env, sb.root / "reference.log", b.poll_interval)
    out.unlink(missing_ok=True)
    if m.returncode:
        raise BenchError(f"reference `{script}` failed")
    b.record(name, "reference", "floor", rep, m)


def push(b: Bench, name: str, ds: inputs.DataSet) -> None:
    """A new file in a repo whose remote already has the first commit: `git add`,
    `git commit`, `git push` (the pre-push hook uploads the content), each timed."""
    boxes = b.sandboxes(name)
    for rep in range(b.reps):
        for tool in b.tools:
            sb = boxes[tool.key]
            repo, remote = sb.root / f"repo-{rep}", sb.remotes / f"remote-{rep}.git"
            init_repo(sb, repo, remote)
            copy_in(ds, repo)
            steps = [
                ("git add", ["add", *top_paths(ds)]),
                ("git commit", ["commit", "-q", "-m", "Add data"]),
                ("git push", ["push", "-q", "origin", "main"]),
            ]
            measured = [(step, sb.timed_git(*args, cwd=repo)) for step, args in steps]
            verify_pushed(sb, remote, ds, f"verify-{rep}")
            for step, m in measured:
                b.record(name, step, tool.key, rep, m)
            shutil.rmtree(repo)
            shutil.rmtree(remote)
    for sb in boxes.values():
        sb.destroy()


#: Clones of the small-files remote that show what git alone costs, each timed per rep
#: after gitmlx's: git's checkout of the pointer files with no filter, and through
#: bench/floor_filter.py (git's per-file filter protocol, a Python filter doing no work).
CLONE_FLOORS = (
    (
        "git clone, no filter",
        ("-c", "filter.mlx.process=", "-c", "filter.mlx.smudge=", "-c", "filter.mlx.required=false"),
    ),
    (
        "git clone, bare Python filter",
        ("-c", f"filter.mlx.process={sys.executable} {Path(__file__).resolve().with_name('floor_filter.py')}"),
    ),
)


def small_files(b: Bench, name: str, ds: inputs.DataSet) -> None:
    """gitmlx alone (Git LFS 3.3 fails this push with "missing object"): `git push` of many
    small files, then a fresh `git clone`, each against the physical reference for the same
    files in the same run: copy them to the remote's file system, hashing each (read +
    sha256 + write, `cp -r` + `openssl dgst`). Then the two clones of `CLONE_FLOORS`, what
    git's own part of a clone costs. Recorded per rep: the reference, push, clone and the
    floors, interleaved, so load changes hit all of them alike."""
    boxes = b.sandboxes(name)
    for key in [k for k in boxes if k != "mlx"]:
        boxes.pop(key).destroy()
    sb = boxes["mlx"]
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C", "HOME": str(sb.root)}
    top = f'"{ds.root}/shards"'
    leftovers = Leftovers(ds)
    for rep in range(b.reps):
        out = sb.remotes / f"floor-{rep}"
        script = f'cp -r {top} "{out}" && find "{out}" -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null'
        os.sync()
        m = measure(["sh", "-c", script], sb.root, env, sb.root / "floor.log", b.poll_interval)
        if m.returncode:
            raise BenchError(f"floor `{script}` failed")
        b.record(name, "reference", "floor", rep, m)
        leftovers.remove(out)
        repo, remote = sb.root / f"repo-{rep}", sb.remotes / f"remote-{rep}.git"
        init_repo(sb, repo, remote)
        copy_in(ds, repo)
        sb.git("add", *top_paths(ds), cwd=repo)
        sb.git("commit", "-q", "-m", "Add data", cwd=repo)
        os.sync()
        pushed = sb.timed_git("push", "-q", "origin", "main", cwd=repo)
        b.record(name, "git push", "mlx", rep, pushed)
        dest = sb.root / f"clone-{rep}"
        cloned = sb.timed_git("clone", "-q", remote.as_uri(), str(dest), cwd=sb.root)
        verify_worktree(sb, dest, ds)
        b.record(name, "git clone", "mlx", rep, cloned)
        floors = [sb.root / f"clone-{rep}-{step}" for step in ("git", "protocol")]
        for (step, config), folder in zip(CLONE_FLOORS, floors, strict=True):
            floor = sb.timed_git(*config, "clone", "-q", remote.as_uri(), str(folder), cwd=sb.root)
            b.record(name, step, "floor", rep, floor)
        for folder in (repo, dest, remote, *floors):
            leftovers.remove(folder)
    leftovers.clear()
    sb.destroy()
