"""The S3 adapter: the only code that talks to the object store, `S3Store` and its modules.

`S3Store` is composed of a base holding the client and the error translation (`s3_base`) and
two mixins, one per kind of operation: single objects (`s3_objects`) and directories of
objects (`s3_prefixes`). Credentials come from botocore's standard chain (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, a profile, a role). Error messages name the endpoint, bucket and key,
never a credential. A "prefix" here is a directory: `s3://b/envs/b-x` covers `envs/b-x/...`
and not `envs/b-x-2/...`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .s3_base import parse_s3_uri, s3_uri
from .s3_objects import ObjectsMixin
from .s3_prefixes import PrefixesMixin

__all__ = ["S3Store", "parse_s3_uri", "s3_uri"]


class S3Store(ObjectsMixin, PrefixesMixin):
    """One S3 store (an endpoint and region, or AWS itself) and everything done with it."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Store:
        """The store the S3 variables of `env` name (MLFLOW_S3_ENDPOINT_URL, AWS_DEFAULT_REGION):
        for the pods, which run without the pipeline's settings."""
        return cls(env.get("MLFLOW_S3_ENDPOINT_URL"), env.get("AWS_DEFAULT_REGION", "us-east-1"))
