"""Multipart uploads that a later run can resume: parts stream from the file, each part
finished is recorded in a local journal, and the next upload of the same key to the same
remote continues the same S3 upload (ListParts) instead of starting again.

Owns: the journal file (docs/local-store.md, "Layout": `uploads/`), creating, resuming, completing
and aborting one multipart upload, and the rule for which parts may be reused.
Must not: translate errors into messages (remote.py does), or decide where journals live
(the caller passes the folder, under the local store).

Why a part may be reused: the journal holds, for each part this client finished, its size,
the sha256 of the bytes it read from the file and the ETag S3 answered. A part is reused
only when the file's bytes at that place still hash to the recorded sha256 and ListParts
shows the same part number with the same size and ETag: the server holds what this client
sent, and the file still has those bytes. Anything else is uploaded again.

What happens to an unfinished upload: a stop (Ctrl-C, SIGTERM) or a local failure aborts
it and deletes its journal (nothing is left billed on S3); a failure talking to S3 (the
network dropped for longer than the retries) and a killed process leave both, for the next
push. A journal older than `RESUME_WITHIN` is not resumed (its upload is aborted and a new
one started): `gc --remote` aborts uploads older than its grace period (7 days by
default), so a resumed upload never races it, and resuming never keeps an upload alive
past that: S3 dates an upload from its creation, and resuming does not move that date.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from gitmlx.errors import RemoteError
from gitmlx.osutil import stop
from gitmlx.remotes.s3.errors import error_code, http_status

#: Journals older than this (seconds since the upload was created) are not resumed.
RESUME_WITHIN = 24 * 3600
#: How often (seconds) a wait for parts in flight looks whether a stop was requested.
STOP_POLL = 0.1
_VERSION = 1
_READ = 1024 * 1024


class NoSuchUpload(RemoteError):
    """The upload a journal names is gone from S3 (completed, aborted, collected)."""

    def __init__(self) -> None:
        super().__init__("a multipart upload vanished from S3 while it was resumed", "run the command again")


class PartFile:
    """A read-only window [offset, offset + length) of a file, as botocore wants a body:
    read, seek, tell, and rewinding for a retry. Reads check for a stop request and report
    progress, so a part can be interrupted mid-way and a bar moves while it goes."""

    def __init__(self, path: Path, offset: int, length: int, moved: Callable[[int], None] | None) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close(), botocore holds it meanwhile
        self._start, self._length, self._pos = offset, length, 0
        self._moved = moved
        #: False while botocore reads the body to sign it (not a transfer): see `watch`.
        self.counting = True
        self._file.seek(offset)

    def read(self, size: int = -1) -> bytes:
        stop.check()
        left = self._length - self._pos
        size = left if size is None or size < 0 else min(size, left)
        data = self._file.read(size)
        self._pos += len(data)
        if self._moved is not None and data and self.counting:
            self._moved(len(data))
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._length}[whence]
        self._pos = max(0, min(self._length, base + pos))
        self._file.seek(self._start + self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return self._length

    def close(self) -> None:
        self._file.close()


def watch(client: Any) -> None:
    """Tell a part's body when botocore reads it to sign the request (SigV4 hashes the
    payload of a plain-http request) rather than to send it, so progress counts each byte
    once: the handlers run first and last around the signer, as s3transfer's do."""

    def pause(request: Any, operation_name: str, **_: Any) -> None:
        if operation_name == "UploadPart" and isinstance(request.body, PartFile):
            request.body.counting = False

    def resume(request: Any, operation_name: str, **_: Any) -> None:
        body = getattr(request.body, "_raw", request.body)  # inside an aws-chunked wrapper
        if operation_name == "UploadPart" and isinstance(body, PartFile):
            body.counting = True

    client.meta.events.register_first("request-created.s3", pause, unique_id="gitmlx-part-pause")
    client.meta.events.register_last("request-created.s3", resume, unique_id="gitmlx-part-resume")


def part_sha256(path: Path, offset: int, length: int) -> str:
    """sha256 of the file's bytes [offset, offset + length), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left > 0:
            block = f.read(min(_READ, left))
            if not block:
                break
            digest.update(block)
            left -= len(block)
    return digest.hexdigest() if left == 0 else ""


class Journal:
    """One upload's local record: a header line (remote, key, upload id, size, part size,
    creation time), then one line per finished part, appended and fsynced. A torn last line
    (killed mid-append) is ignored; an unreadable header means no journal."""

    def __init__(self, folder: Path, remote: str, key: str) -> None:
        name = hashlib.sha256(f"{remote}\0{key}".encode()).hexdigest()[:40]
        self.folder, self.path = folder, folder / f"{name}.jsonl"
        self.remote, self.key = remote, key
        self._lock = threading.Lock()

    def load(self) -> tuple[dict[str, Any], dict[int, dict[str, Any]]] | None:
        """The header and the recorded parts by number, or None (no journal, not ours, unreadable)."""
        try:
            with open(self.path, "rb") as f:
                lines = f.read(64 * 1024 * 1024).split(b"\n")
        except OSError:
            return None
        header = _json_object(lines[0])
        if (
            header is None
            or header.get("version") != _VERSION
            or header.get("remote") != self.remote
            or header.get("key") != self.key
            or not isinstance(header.get("upload_id"), str)
            or not all(_is_count(header.get(k)) for k in ("size", "part_size"))
            or not isinstance(header.get("created"), (int, float))
        ):
            return None
        parts: dict[int, dict[str, Any]] = {}
        for line in lines[1:]:
            part = _json_object(line)
            if part is None or not _is_count(part.get("part")) or not _is_count(part.get("size")):
                continue  # a torn or foreign line
            if isinstance(part.get("etag"), str) and isinstance(part.get("sha256"), str):
                parts[part["part"]] = part
        return header, parts

    def start(self, upload_id: str, size: int, part_size: int) -> None:
        """Write a new journal (temp file + rename, so a reader sees it whole or not at all)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        header = {
            "version": _VERSION,
            "remote": self.remote,
            "key": self.key,
            "upload_id": upload_id,
            "size": size,
            "part_size": part_size,
            "created": time.time(),
        }
        tmp = self.folder / f".{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, json.dumps(header).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def add(self, number: int, size: int, etag: str, sha256: str) -> None:
        line = json.dumps({"part": number, "size": size, "etag": etag, "sha256": sha256}).encode() + b"\n"
        with self._lock:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            except OSError:
                return  # deleted meanwhile (the upload was aborted): nothing to resume
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def _json_object(line: bytes) -> dict[str, Any] | None:
    if not line.strip() or len(line) > 4096:
        return None
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 62


class Upload:
    """One multipart upload of `path` to `bucket/key`, resumed from `journal` if it can be.

    `client` is a boto3 S3 client; `moved` is told every byte sent (and, once, the bytes of
    parts reused). `reused` and `sent` say what happened, for the caller and the tests."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        path: Path,
        part_size: int,
        threads: int,
        journal: Journal | None,
        moved: Callable[[int], None] | None,
    ) -> None:
        self.client, self.bucket, self.key, self.path = client, bucket, key, path
        self.size = os.stat(path).st_size
        self.part_size, self.threads, self.journal, self.moved = part_size, threads, journal, moved
        self.upload_id = ""
        self.etags: dict[int, str] = {}
        self.reused = 0

    def run(self) -> None:
        """Upload every part not already on S3, then complete. A resumed upload that S3
        no longer has (collected by gc meanwhile) starts again, once."""
        self._open()
        try:
            try:
                self._send_missing()
                self._complete()
            except NoSuchUpload:
                self._forget()
                self._create()
                self._send_missing()
                self._complete()
        except BaseException as exc:
            # A stop, or a failure of ours (a read error, a bug): abort, nothing is left
            # billed. A failure of S3 or the network: keep the upload for the next push.
            if isinstance(exc, stop.Stopped) or not _is_remote_failure(exc):
                self._abort()
            raise
        if self.journal is not None:
            self.journal.delete()

    def _count(self) -> int:
        return max(1, -(-self.size // self.part_size))

    def _bounds(self, number: int) -> tuple[int, int]:
        start = (number - 1) * self.part_size
        return start, min(self.part_size, self.size - start)

    def _open(self) -> None:
        found = self.journal.load() if self.journal is not None else None
        if found is not None:
            header, parts = found
            fresh = 0 <= time.time() - header["created"] < RESUME_WITHIN
            if fresh and header["size"] == self.size and header["part_size"] == self.part_size:
                try:
                    listed = self._list_parts(header["upload_id"])
                except NoSuchUpload:
                    listed = None
                if listed is not None:
                    self.upload_id = header["upload_id"]
                    self._reuse(parts, listed)
                    return
            else:
                self._abort_quietly(header["upload_id"])
            self._forget()
        self._create()

    def _reuse(self, recorded: dict[int, dict[str, Any]], listed: dict[int, tuple[str, int]]) -> None:
        for number in range(1, self._count() + 1):
            part = recorded.get(number)
            start, length = self._bounds(number)
            if part is None or part["size"] != length or listed.get(number) != (part["etag"], length):
                continue
            if part_sha256(self.path, start, length) != part["sha256"]:
                continue
            self.etags[number] = part["etag"]
            self.reused += length
        if self.moved is not None and self.reused:
            self.moved(self.reused)

    def _list_parts(self, upload_id: str) -> dict[int, tuple[str, int]]:
        listed: dict[int, tuple[str, int]] = {}
        marker = 0
        while True:
            try:
                page = self.client.list_parts(
                    Bucket=self.bucket, Key=self.key, UploadId=upload_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if error_code(exc) in ("NoSuchUpload", "NoSuchKey") or http_status(exc) == 404:
                    raise NoSuchUpload() from None
                raise
            for part in page.get("Parts", ()):
                listed[int(part["PartNumber"])] = (part["ETag"], int(part["Size"]))
            if not page.get("IsTruncated"):
                return listed
            marker = int(page["NextPartNumberMarker"])

    def _create(self) -> None:
        self.upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        self.etags, self.reused = {}, 0
        if self.journal is not None:
            try:
                self.journal.start(self.upload_id, self.size, self.part_size)
            except OSError:
                self.journal = None  # a read-only or full store: the upload works, it cannot resume

    def _send_missing(self) -> None:
        todo = [n for n in range(1, self._count() + 1) if n not in self.etags]
        with ThreadPoolExecutor(max_workers=max(1, self.threads), thread_name_prefix="gitmlx-part") as pool:
            futures = [pool.submit(self._send, n) for n in todo]
            try:
                for future in futures:
                    # A stop is noticed while parts are in flight, not once they are all
                    # sent: on a worker thread (a push of several objects) nothing else
                    # would interrupt this wait, and the upload would be completed.
                    while not future.done():
                        stop.check()
                        wait_for([future], timeout=STOP_POLL)
                    future.result()
            finally:
                for future in futures:
                    future.cancel()

    def _send(self, number: int) -> None:
        stop.check()
        start, length = self._bounds(number)
        digest = part_sha256(self.path, start, length)
        body = PartFile(self.path, start, length, self.moved)
        try:
            answer = self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=body,
                ContentLength=length,
            )
        except ClientError as exc:
            if error_code(exc) == "NoSuchUpload":
                raise NoSuchUpload() from None
            raise
        finally:
            body.close()
        self.etags[number] = answer["ETag"]
        if self.journal is not None:
            try:
                self.journal.add(number, length, answer["ETag"], digest)
            except OSError:
                pass  # the part is sent; a later resume sends it again

    def _complete(self) -> None:
        parts = [{"PartNumber": n, "ETag": self.etags[n]} for n in sorted(self.etags)]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
            )
        except ClientError as exc:
            if error_code(exc) == "NoSuchUpload":
                raise NoSuchUpload() from None
            raise

    def _abort(self) -> None:
        if self.upload_id:
            self._abort_quietly(self.upload_id)
        self._forget()

    def _abort_quietly(self, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception:  # noqa: BLE001 - best effort: gc --remote aborts what is left
            pass

    def _forget(self) -> None:
        if self.journal is not None:
            self.journal.delete()


def _is_remote_failure(exc: BaseException) -> bool:
    """A failure of S3 or of the way there (worth resuming later), not of this machine."""
    return isinstance(exc, (BotoCoreError, ClientError))
