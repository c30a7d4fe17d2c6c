"""The least a Python filter process can do: git's long-running filter protocol, answering
every clean request with a pointer and every smudge request with its own input (so a
checkout writes the pointer files as they are), storing nothing.

bench/startup.py runs it beside gitmlx and Git LFS (`--floor`) to show how much of gitmlx's
start-up is Python's own: the interpreter with `site`, `hashlib`, and the pipe protocol.
The small-20000 workload (bench/workloads.py) clones through it to show what git's
per-file protocol costs before a filter does any work. No gitmlx module is imported.
"""

import hashlib
import sys


def read_pkt(stream):
    head = stream.read(4)
    if len(head) < 4:
        return b"EOF"
    n = int(head, 16)
    return None if n == 0 else stream.read(n - 4)


def read_list(stream):
    out = []
    while True:
        line = read_pkt(stream)
        if line is None:
            return out
        if line == b"EOF":
            raise SystemExit(0)
        out.append(line)


def write(out, *lines):
    for line in lines:
        out.write(b"%04x" % (len(line) + 4) + line if line else b"0000")


def main():
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    read_list(inp)
    write(out, b"git-filter-server\n", b"version=2\n", b"")
    out.flush()
    read_list(inp)
    write(out, b"capability=clean\n", b"capability=smudge\n", b"")
    out.flush()
    while True:
        header = read_list(inp)
        digest, size, chunks = hashlib.sha256(), 0, read_list(inp)
        if header and header[0] == b"command=clean\n":
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
            chunks = [b"version floor\noid sha256:%s\nsize %d\n" % (digest.hexdigest().encode(), size)]
        write(out, b"status=success\n", b"")
        write(out, *chunks)
        write(out, b"", b"")
        out.flush()


main()
