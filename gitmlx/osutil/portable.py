"""GIT_MLX_PORTABLE=1: use only what every POSIX system has, as on macOS.

Owns: the switch, read once when gitmlx starts. Each Linux-only call gitmlx makes has a
portable fallback, taken where the call is missing (macOS, BSD) or refused; this switch
takes every fallback on Linux too, so the tests can run them all (docs/platforms.md):

| Linux-only call                        | fallback                                      |
| -------------------------------------- | --------------------------------------------- |
| renameat2(RENAME_EXCHANGE)             | a new temp file renamed over the pointer      |
| ioctl(FICLONE) reflink                 | copy_file_range, then read/write              |
| copy_file_range                        | read/write through Python                     |
| sync_file_range                        | none (writeback starts later, by the kernel)  |
| posix_fadvise(DONTNEED)                | none (the page cache keeps the store's pages) |
| fdatasync                              | fsync                                         |
| syncfs                                 | sync                                          |
| fcntl(F_SETPIPE_SZ)                    | the default pipe size                         |
| /proc (process state, boot id, parent) | kill(2) only; no verified-object vouchers;    |
|                                        | sequencer detection off                       |

Must not: make any call itself; callers ask `enabled()` before a Linux-only call.
"""

from __future__ import annotations

import os

_ENABLED = os.environ.get("GIT_MLX_PORTABLE", "").strip().lower() not in ("", "0", "false", "no", "off")


def enabled() -> bool:
    """Whether to behave as on a system without any Linux-only call."""
    return _ENABLED
