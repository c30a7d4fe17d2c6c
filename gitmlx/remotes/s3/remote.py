"""The S3 backend: objects stored under `s3://BUCKET[/PREFIX]` through boto3.

Owns: the only boto3 / botocore / s3transfer import in gitmlx (with errors.py and
multipart.py beside it); the client's retry, timeout and pool settings; choosing a single
PUT or a resumable multipart upload (multipart.py); downloads that resume with a Range
request when the connection drops mid-body; and turning every boto failure into one
`RemoteError` line that names the remote (never a credential) and the fix.
Must not: know what keys mean, look for credentials itself (boto3's default chain only:
env, profile, instance role), print, or hold a whole object in memory (only `read_range`).
"""

from __future__ import annotations

import math
import os
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ParamValidationError,
    ProfileNotFound,
)
from urllib3.exceptions import HTTPError, ProtocolError

from gitmlx import trace
from gitmlx.errors import ConfigError, MlxError, ObjectNotFound, RemoteError
from gitmlx.osutil import stop
from gitmlx.remotes.base import ProgressCallback, RemoteEntry, RemoteOptions, Sink, check_key
from gitmlx.remotes.s3 import multipart
from gitmlx.remotes.s3.errors import (
    DROPPED,
    clean,
    error_code,
    http_status,
    no_retry_for_local_failures,
    translate,
)

_MiB = 1024 * 1024
_CHUNK = _MiB
_MAX_PARTS = 10_000  # S3's limit on parts per multipart upload
# botocore's own rule for bucket names; S3-compatible stores allow more than AWS does.
_BUCKET_RE = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


# A connection lost while reading a response body: resumable with a Range request.
class S3Remote:
    """Objects are S3 objects named `PREFIX/KEY` in one bucket; one client, shared by threads.

    Over 250 lines because it implements the whole Remote protocol for one backend; the
    error translation already lives in errors.py, and what is left (resumable ranged
    downloads, multipart uploads) shares the client and its retry settings."""

    #: Files at least this big go up as multipart uploads of this chunk size (grown as
    #: needed to stay within 10,000 parts); tests shrink them to exercise that path.
    multipart_threshold = 64 * _MiB
    multipart_chunksize = 64 * _MiB
    #: Threads per multipart upload.
    transfer_threads = 4
    #: botocore attempts per request (first included): backoff with jitter on 5xx,
    #: SlowDown, timeouts and dropped connections. With 5, a request had a ~1e-4 chance
    #: of failing through a link that drops or throttles 15% of requests, and a push of a
    #: few hundred files failed about once in 30 (seen in CI); with 8, ~3e-7. Worst case
    #: a persistently failing request gives up after about a minute of backoff; an
    #: unreachable endpoint still fails after two (no_retry_for_local_failures).
    max_attempts = 8
    #: A download gives up after this many drops in a row that brought no new bytes.
    resume_attempts = 5
    resume_backoff = 0.5  # seconds before the 2nd such attempt, doubled after each

    def __init__(self, client: object, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._root = f"{prefix}/" if prefix else ""
        self.display_url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.copies_are_local = False
        self.endpoint = clean(client.meta.endpoint_url)  # type: ignore[attr-defined]
        self.identity = f"{self.display_url}|{self.endpoint or ''}"
        self._bucket_seen = False
        #: Where multipart uploads keep their journals (under the local store), so a
        #: killed push's upload is resumed by the next one; None: never resumed.
        self.upload_journals: Path | None = None

    @classmethod
    def from_url(cls, url: str, options: RemoteOptions) -> S3Remote:
        """The remote for `s3://BUCKET[/PREFIX]`; boto3 resolves credentials when first used."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or "@" in parts.netloc or parts.query or parts.fragment:
            raise ConfigError(f"invalid S3 remote URL '{clean(url)}'", "use s3://BUCKET[/PREFIX]")
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if not _BUCKET_RE.match(bucket) or (prefix and not _is_key(prefix)):
            raise ConfigError(f"invalid S3 remote URL '{clean(url)}'", "use s3://BUCKET[/PREFIX]")
        style = options.addressing_style
        if style not in (None, "auto", "path", "virtual"):
            raise ConfigError(f"unknown S3 addressing style '{style}'", "use 'path', 'virtual' or 'auto'")
        # Many S3-compatible stores (older MinIO, Ceph, ...) reject the checksum trailers
        # boto3 >= 1.36 sends by default: off AWS, send checksums only where required.
        guess = options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3")
        custom = not _is_aws(guess or os.environ.get("AWS_ENDPOINT_URL") or "s3.amazonaws.com")
        client = cls._make_client(options, custom_endpoint=custom)
        if not custom and not _is_aws(client.meta.endpoint_url):  # set in ~/.aws/config
            client = cls._make_client(options, custom_endpoint=True)
        remote = cls(client, bucket, prefix)
        remote.upload_journals = options.upload_journals
        if options.part_size is not None:
            remote.multipart_threshold = remote.multipart_chunksize = options.part_size
        return remote

    @classmethod
    def _make_client(cls, options: RemoteOptions, custom_endpoint: bool) -> object:
        checksums = "when_required" if custom_endpoint else "when_supported"
        config = Config(
            retries={"mode": "standard", "total_max_attempts": cls.max_attempts},
            connect_timeout=10,
            read_timeout=60,
            tcp_keepalive=True,
            max_pool_connections=max(10, options.concurrency * cls.transfer_threads),
            s3={"addressing_style": options.addressing_style or "auto"},
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
            user_agent_extra="gitmlx",
        )
        try:
            client = boto3.session.Session().client(
                "s3",
                region_name=options.region,
                endpoint_url=options.endpoint_url,
                config=config,
            )
        except ProfileNotFound as exc:
            raise ConfigError(
                f"AWS profile '{exc.kwargs.get('profile')}' is not configured",
                "fix AWS_PROFILE, or add the profile to ~/.aws/config",
            ) from None
        except ValueError as exc:  # botocore: "Invalid endpoint: ..."
            raise ConfigError(
                f"invalid S3 endpoint URL '{clean(options.endpoint_url or '')}'",
                "set mlx.s3.endpoint-url to http(s)://HOST[:PORT]",
            ) from exc
        except BotoCoreError as exc:
            raise ConfigError(f"cannot configure the S3 client: {clean(str(exc))}") from exc
        client.meta.events.register_first("needs-retry.s3", no_retry_for_local_failures)
        if trace.ON:
            from gitmlx.remotes.s3 import tracing

            tracing.attach(client)
        multipart.watch(client)
        return client

    def credentials_source(self) -> str | None:
        """Where boto3's standard chain found credentials ('env', 'shared-credentials-file',
        'iam-role', ...), or None: for `git mlx doctor`, which must never show the keys."""
        with self._errors("find credentials", None):
            found = boto3.session.Session().get_credentials()  # the chain the client uses
        if found is None:
            return None
        return getattr(found, "method", None) or "unknown"

    # -- the Remote protocol ------------------------------------------------------------

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def size(self, key: str) -> int | None:
        full = self._key(key)
        with self._errors("check", key):
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=full)
            except ClientError as exc:
                if http_status(exc) != 404:
                    raise
                # A HEAD 404 has no body, so a missing bucket looks like a missing object.
                self._check_bucket()
                return None
        self._bucket_seen = True
        return int(head["ContentLength"])

    def staging_path(self) -> None:
        """None: a pack is built in the local store's temporary folder, since an upload
        reads it from a local file whatever happens (and retries re-read it)."""
        return None

    def put_file(self, key: str, path: Path, progress: ProgressCallback | None = None, consume: bool = False) -> None:
        full = self._key(key)
        size = os.stat(path).st_size

        # S3 makes a PUT (or a completed multipart upload) visible whole or not at all.
        def moved(n: int) -> None:
            stop.check()  # a stop request fails the transfer, and aborts a multipart upload
            if progress is not None:
                progress(n)

        with self._errors("upload", key):
            if size < self.multipart_threshold:
                config = TransferConfig(multipart_threshold=self.multipart_threshold, use_threads=False)
                self._client.upload_file(str(path), self.bucket, full, Config=config, Callback=moved)
                return
            # Grow parts so a file of any size fits in 10,000 of them (5 GiB+ files work).
            part = max(self.multipart_chunksize, math.ceil(size / _MAX_PARTS / _MiB) * _MiB)
            folder = self.upload_journals
            journal = None if folder is None else multipart.Journal(folder, self.identity, full)
            threads = self.transfer_threads
            multipart.Upload(self._client, self.bucket, full, path, part, threads, journal, moved).run()

    def get(
        self,
        key: str,
        sink: Sink,
        offset: int = 0,
        progress: ProgressCallback | None = None,
        length: int | None = None,
    ) -> None:
        self._download(key, sink, offset, None if length is None else offset + length, progress)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            if self.size(key) is None:
                raise ObjectNotFound(f"'{key}' is not on remote '{self.display_url}'")
            return b""
        buf = BytesIO()
        self._download(key, buf, start, start + length, None)
        return buf.getvalue()

    def list(self, prefix: str = "") -> Iterator[RemoteEntry]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors("list", prefix or None):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._root + prefix):
                for obj in page.get("Contents", ()):
                    rel = obj["Key"][len(self._root) :]
                    if _is_key(rel):  # skip "folder/" markers and other foreign names
                        yield RemoteEntry(rel, int(obj["Size"]))

    def delete(self, key: str) -> None:
        full = self._key(key)
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    def abort_stale_uploads(self, started_before: float) -> int:
        aborted = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        with self._errors("list the unfinished uploads of", None):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._root):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() < started_before:
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        return aborted

    def __repr__(self) -> str:
        return f"S3Remote({self.display_url!r}, endpoint={self.endpoint!r})"

    # -- helpers --------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return self._root + check_key(key)

    def _download(
        self,
        key: str,
        sink: Sink,
        start: int,
        end: int | None,
        progress: ProgressCallback | None,
    ) -> None:
        """Stream bytes [start, end) into `sink`, resuming from the last byte written."""
        full, pos, etag, failures = self._key(key), start, None, 0
        with self._errors("download", key):
            while end is None or pos < end:
                args = {"Bucket": self.bucket, "Key": full}
                if pos or end is not None:
                    args["Range"] = f"bytes={pos}-{'' if end is None else end - 1}"
                if etag:  # a resumed read must continue the same object
                    args["IfMatch"] = etag
                before = pos
                try:
                    response = self._client.get_object(**args)
                except ProtocolError:
                    # botocore reads an (error) response's body itself, and a connection cut
                    # there escapes as urllib3's ProtocolError without botocore's retries
                    # (seen through the fault proxy on a 404): counted and retried like a
                    # cut body. botocore's own errors come after its retries: not here.
                    response = None
                except ClientError as exc:
                    code = error_code(exc)
                    if code == "NoSuchKey" or (http_status(exc) == 404 and code != "NoSuchBucket"):
                        raise ObjectNotFound(f"'{key}' is not on remote '{self.display_url}'") from None
                    if code == "InvalidRange":  # starts at or past the end: nothing to send
                        return
                    if code == "PreconditionFailed":
                        raise RemoteError(
                            f"'{key}' changed on remote '{self.display_url}' while downloading",
                            "run the command again",
                        ) from None
                    raise
                if response is not None:
                    etag = etag or response.get("ETag")
                    pos, ended = self._read_body(response["Body"], sink, progress, pos)
                    if ended:
                        return
                failures = 0 if pos > before else failures + 1
                if failures >= self.resume_attempts:
                    raise RemoteError(
                        f"the connection to remote '{self.display_url}' kept dropping while "
                        f"downloading '{key}' ({pos - start} bytes received)",
                        "check the network and run the command again",
                    )
                if failures:
                    time.sleep(self.resume_backoff * 2 ** (failures - 1) * random.uniform(0.5, 1))

    @staticmethod
    def _read_body(body: Any, sink: Sink, progress: ProgressCallback | None, pos: int) -> tuple[int, bool]:
        """Copy a response body into `sink`: the position after it, and whether the body
        ended (False: the connection dropped first, the caller resumes with a Range)."""
        try:
            while True:
                try:
                    chunk = body.read(_CHUNK)
                except DROPPED:
                    return pos, False
                if not chunk:
                    return pos, True
                sink.write(chunk)
                pos += len(chunk)
                if progress:
                    progress(len(chunk))
        finally:
            body.close()

    def _check_bucket(self) -> None:
        if self._bucket_seen:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if http_status(exc) == 404:
                raise self._translate(
                    ClientError({"Error": {"Code": "NoSuchBucket"}}, "HeadBucket"), "check", None
                ) from None
            raise
        self._bucket_seen = True

    @contextmanager
    def _errors(self, action: str, key: str | None) -> Iterator[None]:
        try:
            yield
        except (MlxError, ParamValidationError):
            raise  # ours already, or a bug in how we called botocore
        except (BotoCoreError, ClientError, S3UploadFailedError, HTTPError) as exc:
            # HTTPError: urllib3's own, where botocore lets one escape (see _download)
            raise self._translate(exc, action, key) from exc

    def _translate(self, exc: BaseException, action: str, key: str | None) -> RemoteError:
        return translate(exc, action, key, self)


def _is_key(key: str) -> bool:
    try:
        check_key(key)
    except RemoteError:
        return False
    return True


def _is_aws(endpoint: str) -> bool:
    host = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").hostname or ""
    return host.endswith(("amazonaws.com", "amazonaws.com.cn"))
