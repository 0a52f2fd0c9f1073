"""The operations of `S3Store` on one object: whether it exists, writing it (from bytes or a
local file of any size, or only if absent), reading it (whole, as a stream, its ETag, metadata
or sha256), copying it inside the store and deleting it. They are apart from the operations on
a directory of objects (`s3_prefixes`), which are built from these, and from the plumbing
every request goes through (`s3_base`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .s3_base import CHUNK_BYTES, S3Base, error_code, http_status

# A file above one part goes up as a multipart upload of parts this size (s3transfer makes
# them larger for a file of more than 10,000 parts), this many at a time: each holds a
# connection and a few buffers, not the part.
MULTIPART_PART_BYTES = 16 << 20
MULTIPART_CONCURRENCY = 4


class ObjectsMixin(S3Base):
    """Single objects, each named by an `s3://bucket/key` URI with a key."""

    def exists(self, uri: str) -> bool:
        """True if `uri` is an object, or a directory holding at least one object."""
        target = self._target(uri)
        if target.key and not target.key.endswith("/") and self._head(target) is not None:
            return True
        return next(self._keys_under(target), None) is not None

    def put_bytes(self, uri: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        """Write an object; `metadata` (x-amz-meta-*) travels with it, copies included."""
        target = self._target(uri, need_key=True)
        with self._errors(target, "write"):
            self._client.put_object(
                Bucket=target.bucket, Key=target.key, Body=data, Metadata=dict(metadata or {})
            )

    def create_bytes(self, uri: str, data: bytes) -> bool:
        """Write an object only if there is none at `uri` (`If-None-Match: *`, one atomic step
        in the store); False when one exists, or a concurrent create of it won (HTTP 412, 409).
        A retried request that the store had in fact carried out also gives False: read the
        object to know whose it is."""
        from botocore.exceptions import ClientError

        target = self._target(uri, need_key=True)
        with self._errors(target, "create"):
            try:
                self._client.put_object(
                    Bucket=target.bucket, Key=target.key, Body=data, IfNoneMatch="*"
                )
            except ClientError as exc:
                if http_status(exc) in (409, 412):
                    return False
                raise
        return True

    def upload_file(self, uri: str, path: Path, metadata: Mapping[str, str] | None = None) -> None:
        """Write an object from a local file of any size without reading it into memory: S3's
        managed transfer (s3transfer, the engine of boto3's `upload_file`) sends a large file
        as a multipart upload, several parts at a time, each read from the file as it goes."""
        from s3transfer.manager import TransferConfig, TransferManager

        target = self._target(uri, need_key=True)
        extra = {"Metadata": dict(metadata)} if metadata else {}
        config = TransferConfig(
            multipart_threshold=MULTIPART_PART_BYTES,
            multipart_chunksize=MULTIPART_PART_BYTES,
            max_request_concurrency=MULTIPART_CONCURRENCY,
        )
        with self._errors(target, "write"), TransferManager(self._client, config) as transfers:
            transfers.upload(str(path), target.bucket, target.key, extra_args=extra).result()

    @contextmanager
    def open_object(self, uri: str) -> Iterator[BinaryIO]:
        """The object's bytes as a stream, read as the caller reads (a tar.gz of gigabytes can
        be unpacked on the way); a failure while reading is a ModelciError too."""
        target = self._target(uri, need_key=True)
        with self._errors(target, "read"):
            body = self._client.get_object(Bucket=target.bucket, Key=target.key)["Body"]
            try:
                yield body
            finally:
                body.close()

    def etag(self, uri: str) -> str | None:
        """The object's ETag (the server's fingerprint of its bytes), "" when the store gives
        none; None when there is no such object."""
        head = self._head(self._target(uri, need_key=True))
        return None if head is None else str(head.get("ETag", "")).strip('"')

    def object_metadata(self, uri: str) -> dict[str, str]:
        """The user metadata an object was written with."""
        target = self._target(uri, need_key=True)
        with self._errors(target, "check"):
            return dict(self._client.head_object(Bucket=target.bucket, Key=target.key)["Metadata"])

    def get_bytes(self, uri: str) -> bytes:
        target = self._target(uri, need_key=True)
        with self._errors(target, "read"):
            response = self._client.get_object(Bucket=target.bucket, Key=target.key)
            return response["Body"].read()

    def get_bytes_or_none(self, uri: str) -> bytes | None:
        """The object's bytes, or None when there is no such object (one request, not two)."""
        from botocore.exceptions import ClientError

        target = self._target(uri, need_key=True)
        with self._errors(target, "read"):
            try:
                response = self._client.get_object(Bucket=target.bucket, Key=target.key)
            except ClientError as exc:
                if error_code(exc) == "NoSuchKey":
                    return None
                raise
            return response["Body"].read()

    def copy(self, source_uri: str, target_uri: str) -> None:
        """Copy one object inside the store (server side: the bytes never reach this job)."""
        source = self._target(source_uri, need_key=True)
        target = self._target(target_uri, need_key=True)
        with self._errors(source, "copy"):
            self._client.copy_object(
                Bucket=target.bucket,
                Key=target.key,
                CopySource={"Bucket": source.bucket, "Key": source.key},
            )

    def sha256(self, uri: str) -> str:
        """The sha256 of one object's bytes, streamed (an archive of gigabytes costs no memory)."""
        import hashlib

        target = self._target(uri, need_key=True)
        digest = hashlib.sha256()
        with self._errors(target, "read"):
            body = self._client.get_object(Bucket=target.bucket, Key=target.key)["Body"]
            for chunk in iter(lambda: body.read(CHUNK_BYTES), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def delete(self, uri: str) -> None:
        """Delete one object (nothing happens when there is none)."""
        target = self._target(uri, need_key=True)
        with self._errors(target, "delete"):
            self._client.delete_object(Bucket=target.bucket, Key=target.key)
