"""The S3 adapter: the only module that talks to the object store.

Credentials come from botocore's standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
a profile, a role). Error messages name the endpoint, bucket and key, never a credential.
A "prefix" here is a directory: `s3://b/envs/b-x` covers `envs/b-x/...` and not `envs/b-x-2/...`.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from ..errors import ModelciError, redact_url

_DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key"); the key may be empty."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an S3 URI: '{uri}'; expected s3://<bucket>/<key>")
    if parts.query or parts.fragment:
        raise ValueError(f"S3 URI '{uri}' must not have a query or fragment (? or #)")
    return parts.netloc, parts.path.lstrip("/")


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _directory_prefix(key: str) -> str:
    key = key.strip("/")
    return f"{key}/" if key else ""


_CHUNK_BYTES = 1 << 20  # objects are streamed to disk in pieces of this size
# A file above one part goes up as a multipart upload of parts this size (s3transfer makes
# them larger for a file of more than 10,000 parts), this many at a time: each holds a
# connection and a few buffers, not the part.
MULTIPART_PART_BYTES = 16 << 20
MULTIPART_CONCURRENCY = 4
_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@functools.cache
def _client(
    endpoint_url: str | None,
    region: str,
    max_attempts: int,
    connect_timeout: float,
    read_timeout: float,
    credentials: tuple[str, ...],  # part of the key: stand jobs switch credentials mid-process
) -> Any:
    """One S3 client per configuration and credentials in a process: creating one loads
    S3's service model, a tenth of a second each time."""
    import botocore.session  # boto3's own import costs a quarter second more, for nothing
    from botocore.config import Config

    config = Config(
        region_name=region,
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint_url, config=config
    )


# A store that accepts connections and never answers fails a call within about 35 s, the bound
# MLflow's calls have (30 s): two attempts of 15 s without a byte, after a 5 s connect at most.
# A slow but live transfer is not cut: the read timeout is per read, not per object.
MAX_ATTEMPTS = 2
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class _Target:
    bucket: str
    key: str


class S3Store:
    def __init__(
        self,
        endpoint_url: str | None,
        region: str,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.endpoint_url = endpoint_url or None
        self.region = region
        credentials = tuple(os.environ.get(name, "") for name in _CREDENTIAL_VARIABLES)
        self._client = _client(
            self.endpoint_url, region, max_attempts, connect_timeout, read_timeout, credentials
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Store:
        """The store the S3 variables of `env` name (MLFLOW_S3_ENDPOINT_URL, AWS_DEFAULT_REGION):
        for the pods, which run without the pipeline's settings."""
        return cls(env.get("MLFLOW_S3_ENDPOINT_URL"), env.get("AWS_DEFAULT_REGION", "us-east-1"))

    def exists(self, uri: str) -> bool:
        """True if `uri` is an object, or a directory holding at least one object."""
        target = self._target(uri)
        if target.key and not target.key.endswith("/") and self._object_exists(target):
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
                if _status(exc) in (409, 412):
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
                if _code(exc) == "NoSuchKey":
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
            for chunk in iter(lambda: body.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def tree_sha256(self, uri: str) -> str:
        """One sha256 for every object under the directory `uri`: of the sorted lines
        `<sha256 of the object>  <path below uri>`, as `sha256sum` would list them. The same
        files under another directory give the same digest."""
        import hashlib

        target = self._target(uri)
        prefix = _directory_prefix(target.key)
        lines = sorted(
            f"{self.sha256(s3_uri(target.bucket, key))}  {key[len(prefix) :]}\n"
            for key in self._keys_under(target)
        )
        if not lines:
            raise ModelciError(f"no objects under {uri} {self._where()}")
        return hashlib.sha256("".join(lines).encode()).hexdigest()

    def copy_prefix(self, source_uri: str, target_uri: str) -> int:
        """Copy every object under the directory `source_uri` to the same paths under
        `target_uri` (server side); returns how many."""
        source = self._target(source_uri)
        prefix = _directory_prefix(source.key)
        target = self._target(target_uri, need_key=True)
        base = _directory_prefix(target.key)
        count = 0
        for key in self._keys_under(source):
            self.copy(s3_uri(source.bucket, key), s3_uri(target.bucket, base + key[len(prefix) :]))
            count += 1
        if count == 0:
            raise ModelciError(f"nothing to copy: no objects under {source_uri} {self._where()}")
        return count

    def download_prefix(self, uri: str, dest: Path) -> int:
        """Copy every object under the directory `uri` into `dest`; returns how many."""
        target = self._target(uri)
        prefix = _directory_prefix(target.key)
        dest = dest.resolve()
        count = 0
        for key in self._keys_under(target):
            path = _local_path(dest, key[len(prefix) :], uri)
            if path is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._errors(_Target(target.bucket, key), "download"):
                body = self._client.get_object(Bucket=target.bucket, Key=key)["Body"]
                with path.open("wb") as out:
                    shutil.copyfileobj(body, out, _CHUNK_BYTES)
            count += 1
        if count == 0:
            raise ModelciError(f"nothing to download: no objects under {uri} {self._where()}")
        return count

    def delete(self, uri: str) -> None:
        """Delete one object (nothing happens when there is none)."""
        target = self._target(uri, need_key=True)
        with self._errors(target, "delete"):
            self._client.delete_object(Bucket=target.bucket, Key=target.key)

    def delete_prefix(self, uri: str) -> int:
        """Delete every object under the directory `uri`; returns how many were deleted."""
        target = self._target(uri, need_key=True)
        batch: list[str] = []
        deleted = 0
        for key in self._keys_under(target):
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                deleted += self._delete(target, batch)
                batch = []
        if batch:
            deleted += self._delete(target, batch)
        return deleted

    def list_objects(self, uri: str) -> dict[str, datetime]:
        """Every object under the directory `uri`: its s3:// URI -> when it was last written."""
        target = self._target(uri)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=target.bucket, Prefix=_directory_prefix(target.key))
        found = {}
        with self._errors(target, "list"):
            for page in pages:
                for item in page.get("Contents", []):
                    found[f"s3://{target.bucket}/{item['Key']}"] = item["LastModified"]
        return found

    def list_prefixes(self, uri: str) -> list[str]:
        """Names of the immediate sub-directories of `uri`, sorted (`s3://b/envs` -> ["b-x"])."""
        target = self._target(uri)
        prefix = _directory_prefix(target.key)
        names: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=target.bucket, Prefix=prefix, Delimiter="/")
        with self._errors(target, "list"):
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(name for name in names if name)

    def _target(self, uri: str, *, need_key: bool = False) -> _Target:
        try:
            bucket, key = parse_s3_uri(uri)
        except ValueError as exc:
            raise ModelciError(str(exc)) from None
        if need_key and not key.strip("/"):
            raise ModelciError(f"S3 URI '{uri}' names a whole bucket; expected s3://{bucket}/<key>")
        return _Target(bucket, key)

    def _object_exists(self, target: _Target) -> bool:
        return self._head(target) is not None

    def _head(self, target: _Target) -> dict[str, Any] | None:
        """The object's HEAD answer; None when there is no such object."""
        from botocore.exceptions import ClientError

        with self._errors(target, "check"):
            try:
                return self._client.head_object(Bucket=target.bucket, Key=target.key)
            except ClientError as exc:
                if _status(exc) == 404:
                    return None
                raise

    def _keys_under(self, target: _Target) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=target.bucket, Prefix=_directory_prefix(target.key))
        with self._errors(target, "list"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"]

    def _delete(self, target: _Target, keys: list[str]) -> int:
        with self._errors(target, "delete"):
            response = self._client.delete_objects(
                Bucket=target.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
        failed = response.get("Errors", [])
        if failed:
            first = failed[0]
            raise ModelciError(
                f"could not delete {len(failed)} of {len(keys)} objects under "
                f"s3://{target.bucket}/{target.key} {self._where()}: "
                f"{first.get('Key')}: {first.get('Code')}"
            )
        return len(keys)

    def _where(self) -> str:
        if self.endpoint_url:
            return f"(S3 endpoint {redact_url(self.endpoint_url)})"
        return f"(AWS S3, region {self.region})"

    @contextmanager
    def _errors(self, target: _Target, action: str) -> Iterator[None]:
        """Turn boto errors into a ModelciError that names no credential."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, target, action) from None

    def _translate(self, exc: BaseException, target: _Target, action: str) -> ModelciError:
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = f"s3://{target.bucket}/{target.key}".rstrip("/")
        head = f"cannot {action} {where} {self._where()}"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            reason = (
                "no S3 credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(masked CI/CD variables) or give the runner a role"
            )
        elif isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
            reason = (
                "the endpoint is unreachable; check MLFLOW_S3_ENDPOINT_URL and that the "
                "runner can reach it"
            )
        elif isinstance(exc, ClientError):
            reason = _client_error_reason(exc, target.bucket)
        else:
            reason = f"{type(exc).__name__}; check the endpoint URL and the network"
        return ModelciError(f"{head}: {reason}")

    def list_sizes(self, uri: str) -> tuple[dict[str, tuple[int, datetime]], int]:
        """Every object under the directory `uri`: its s3:// URI -> (size in bytes, when it
        was last written), and how many list requests that took (a thousand objects each)."""
        target = self._target(uri)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=target.bucket, Prefix=_directory_prefix(target.key))
        found, requests = {}, 0
        with self._errors(target, "list"):
            for page in pages:
                requests += 1
                for item in page.get("Contents", []):
                    at = item["LastModified"]
                    found[f"s3://{target.bucket}/{item['Key']}"] = (int(item["Size"]), at)
        return found, requests


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


# Only the error code and our own hint are shown: a server's message may echo request details.
_CLIENT_ERROR_HINTS = {
    "NoSuchBucket": "bucket '{bucket}' does not exist; create it or fix the bucket in the URI",
    "NoSuchKey": "no such object",
    "InvalidAccessKeyId": "the access key is not known to this endpoint; check AWS_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "the secret key is wrong; check AWS_SECRET_ACCESS_KEY",
    "AccessDenied": "access denied; the credentials lack permission on bucket '{bucket}'",
    "InvalidBucketName": "'{bucket}' is not a valid bucket name",
}


def _client_error_reason(exc: Any, bucket: str) -> str:
    code = _code(exc)
    status = _status(exc)
    if code in {"404", "NotFound"} and status == 404:
        return f"not found (the object or bucket '{bucket}' does not exist)"
    if code in {"403", "Forbidden"}:
        return _CLIENT_ERROR_HINTS["AccessDenied"].format(bucket=bucket)
    hint = _CLIENT_ERROR_HINTS.get(code)
    if hint:
        return f"{code}: {hint.format(bucket=bucket)}"
    return f"{code or 'error'} (HTTP {status}) from the S3 service"


def _local_path(dest: Path, relative_key: str, uri: str) -> Path | None:
    """Where an object lands under `dest`; None for directory markers. Refuses `..` escapes."""
    relative = PurePosixPath(relative_key)
    if not relative.parts or relative_key.endswith("/"):
        return None
    if ".." in relative.parts or relative.is_absolute():
        raise ModelciError(f"refusing to download object '{relative_key}' from {uri}: unsafe path")
    return dest.joinpath(*relative.parts)
