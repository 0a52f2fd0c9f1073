"""The connection to S3 that every operation of `S3Store` stands on: the URI syntax, the
client (built once per configuration and credentials, with the timeouts that bound a silent
store), the two reads the operations are made of (an object's HEAD, the keys under a
directory) and the translation of boto's errors into `ModelciError`s that name the endpoint,
bucket and key, never a credential. It is apart so that the object and the prefix operations
(`s3_objects`, `s3_prefixes`) hold only what they do, not how a request is made or fails.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import ModelciError, redact_url

CHUNK_BYTES = 1 << 20  # objects are streamed to disk in pieces of this size
# A store that accepts connections and never answers fails a call within about 35 s, the bound
# MLflow's calls have (30 s): two attempts of 15 s without a byte, after a 5 s connect at most.
# A slow but live transfer is not cut: the read timeout is per read, not per object.
MAX_ATTEMPTS = 2
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 15.0
_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


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


def directory_prefix(key: str) -> str:
    """The listing prefix of the directory `key`: `envs/b-x` -> `envs/b-x/`, so that it does
    not cover `envs/b-x-2/...`; "" for a whole bucket."""
    key = key.strip("/")
    return f"{key}/" if key else ""


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


@dataclass(frozen=True)
class S3Target:
    """A parsed `s3://` URI: what a request addresses and an error message names."""

    bucket: str
    key: str


class S3Base:
    """The client of one store and the plumbing its operations share."""

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

    def _target(self, uri: str, *, need_key: bool = False) -> S3Target:
        try:
            bucket, key = parse_s3_uri(uri)
        except ValueError as exc:
            raise ModelciError(str(exc)) from None
        if need_key and not key.strip("/"):
            raise ModelciError(f"S3 URI '{uri}' names a whole bucket; expected s3://{bucket}/<key>")
        return S3Target(bucket, key)

    def _head(self, target: S3Target) -> dict[str, Any] | None:
        """The object's HEAD answer; None when there is no such object."""
        from botocore.exceptions import ClientError

        with self._errors(target, "check"):
            try:
                return self._client.head_object(Bucket=target.bucket, Key=target.key)
            except ClientError as exc:
                if http_status(exc) == 404:
                    return None
                raise

    def _keys_under(self, target: S3Target) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=target.bucket, Prefix=directory_prefix(target.key))
        with self._errors(target, "list"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"]

    def _where(self) -> str:
        if self.endpoint_url:
            return f"(S3 endpoint {redact_url(self.endpoint_url)})"
        return f"(AWS S3, region {self.region})"

    @contextmanager
    def _errors(self, target: S3Target, action: str) -> Iterator[None]:
        """Turn boto errors into a ModelciError that names no credential."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, target, action) from None

    def _translate(self, exc: BaseException, target: S3Target, action: str) -> ModelciError:
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


def error_code(exc: Any) -> str:
    """The S3 error code of a botocore ClientError (`NoSuchKey`, `AccessDenied`...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: Any) -> int:
    """The HTTP status of the answer a botocore ClientError carries."""
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
    code = error_code(exc)
    status = http_status(exc)
    if code in {"404", "NotFound"} and status == 404:
        return f"not found (the object or bucket '{bucket}' does not exist)"
    if code in {"403", "Forbidden"}:
        return _CLIENT_ERROR_HINTS["AccessDenied"].format(bucket=bucket)
    hint = _CLIENT_ERROR_HINTS.get(code)
    if hint:
        return f"{code}: {hint.format(bucket=bucket)}"
    return f"{code or 'error'} (HTTP {status}) from the S3 service"
