"""Backends for the artifact remote, chosen by URL scheme and imported lazily.

Owns: `open_remote`, the only entry point: `s3://` loads `gitmlx.remotes.s3.remote` (and
boto3) only when an S3 remote is actually used, so commands served from the local store
never pay for it.
Must not: import a backend at module level.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from gitmlx.errors import ConfigError
from gitmlx.remotes.base import Remote, RemoteOptions


def open_remote(url: str, options: RemoteOptions | None = None) -> Remote:
    """The backend for `url`: `s3://BUCKET[/PREFIX]`, `file:///ABS/PATH` or a plain path."""
    options = options or RemoteOptions()
    if url.startswith("s3://"):
        from gitmlx.remotes.s3.remote import S3Remote

        return S3Remote.from_url(url, options)
    if url.startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"unsupported artifact remote '{url}': file:// URLs must name a local path",
                "use file:///ABSOLUTE/PATH",
            )
        from gitmlx.remotes.local import LocalRemote

        return LocalRemote(Path(unquote(parts.path)))
    if "://" in url:
        raise ConfigError(
            f"unsupported artifact remote '{url}'",
            "use s3://BUCKET[/PREFIX], file:///ABSOLUTE/PATH or a local path",
        )
    from gitmlx.remotes.local import LocalRemote

    return LocalRemote(Path(url).expanduser().resolve())
