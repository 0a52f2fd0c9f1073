"""The operations of `S3Store` on a directory of objects (a "prefix": `s3://b/envs/b-x` covers
`envs/b-x/...` and not `envs/b-x-2/...`): one digest of the whole tree, copying it inside the
store, downloading it, deleting it in batches, and listing what it holds. They are apart from
the single-object operations (`s3_objects`), which they use one object at a time, and from
the plumbing every request goes through (`s3_base`).
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import ModelciError
from .s3_base import CHUNK_BYTES, S3Base, S3Target, directory_prefix, s3_uri

_DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts


class PrefixesMixin(S3Base):
    """Trees of objects, each named by the `s3://bucket/dir` URI of their directory."""

    if TYPE_CHECKING:  # the single-object operations, mixed in beside these by S3Store

        def sha256(self, uri: str) -> str: ...

        def copy(self, source_uri: str, target_uri: str) -> None: ...

    def tree_sha256(self, uri: str) -> str:
        """One sha256 for every object under the directory `uri`: of the sorted lines
        `<sha256 of the object>  <path below uri>`, as `sha256sum` would list them. The same
        files under another directory give the same digest."""
        import hashlib

        target = self._target(uri)
        prefix = directory_prefix(target.key)
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
        prefix = directory_prefix(source.key)
        target = self._target(target_uri, need_key=True)
        base = directory_prefix(target.key)
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
        prefix = directory_prefix(target.key)
        dest = dest.resolve()
        count = 0
        for key in self._keys_under(target):
            path = _local_path(dest, key[len(prefix) :], uri)
            if path is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._errors(S3Target(target.bucket, key), "download"):
                body = self._client.get_object(Bucket=target.bucket, Key=key)["Body"]
                with path.open("wb") as out:
                    shutil.copyfileobj(body, out, CHUNK_BYTES)
            count += 1
        if count == 0:
            raise ModelciError(f"nothing to download: no objects under {uri} {self._where()}")
        return count

    def delete_prefix(self, uri: str) -> int:
        """Delete every object under the directory `uri`; returns how many were deleted."""
        target = self._target(uri, need_key=True)
        batch: list[str] = []
        deleted = 0
        for key in self._keys_under(target):
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                deleted += self._delete_batch(target, batch)
                batch = []
        if batch:
            deleted += self._delete_batch(target, batch)
        return deleted

    def list_objects(self, uri: str) -> dict[str, datetime]:
        """Every object under the directory `uri`: its s3:// URI -> when it was last written."""
        target = self._target(uri)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=target.bucket, Prefix=directory_prefix(target.key))
        found = {}
        with self._errors(target, "list"):
            for page in pages:
                for item in page.get("Contents", []):
                    found[f"s3://{target.bucket}/{item['Key']}"] = item["LastModified"]
        return found

    def list_prefixes(self, uri: str) -> list[str]:
        """Names of the immediate sub-directories of `uri`, sorted (`s3://b/envs` -> ["b-x"])."""
        target = self._target(uri)
        prefix = directory_prefix(target.key)
        names: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=target.bucket, Prefix=prefix, Delimiter="/")
        with self._errors(target, "list"):
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(name for name in names if name)

    def list_sizes(self, uri: str) -> tuple[dict[str, tuple[int, datetime]], int]:
        """Every object under the directory `uri`: its s3:// URI -> (size in bytes, when it
        was last written), and how many list requests that took (a thousand objects each)."""
        target = self._target(uri)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=target.bucket, Prefix=directory_prefix(target.key))
        found, requests = {}, 0
        with self._errors(target, "list"):
            for page in pages:
                requests += 1
                for item in page.get("Contents", []):
                    at = item["LastModified"]
                    found[f"s3://{target.bucket}/{item['Key']}"] = (int(item["Size"]), at)
        return found, requests

    def _delete_batch(self, target: S3Target, keys: list[str]) -> int:
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


def _local_path(dest: Path, relative_key: str, uri: str) -> Path | None:
    """Where an object lands under `dest`; None for directory markers. Refuses `..` escapes."""
    relative = PurePosixPath(relative_key)
    if not relative.parts or relative_key.endswith("/"):
        return None
    if ".." in relative.parts or relative.is_absolute():
        raise ModelciError(f"refusing to download object '{relative_key}' from {uri}: unsafe path")
    return dest.joinpath(*relative.parts)
