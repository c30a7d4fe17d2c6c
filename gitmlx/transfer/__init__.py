"""Moving objects between the local store and a remote in remote format 1 (packs and
manifests, docs/storage-format.md).

Owns: what the other side lacks, the order writes happen in, and verification of every
download before it gets a name in the store. Results list what moved and what failed
instead of raising at the first failure.
Must not: print (progress is a callback) or know which backend it talks to.
"""

from __future__ import annotations

from gitmlx.transfer.common import TransferResult, remote_identity
from gitmlx.transfer.download import download, fetch_one
from gitmlx.transfer.upload import missing_on_remote, upload

__all__ = ["TransferResult", "download", "fetch_one", "missing_on_remote", "remote_identity", "upload"]
