"""The model URIs MLflow hands out, classified and mapped to where KServe reads the files.

Pure: no server is asked. `parse_model_uri` names the kind of a URI (`models:/m-<id>`,
`models:/<name>/<version>`, `models:/<name>@<alias>`, `runs:/<run_id>/<path>` or a storage
location), `map_artifact_uri` turns the location the server names into the s3:// one KServe
is given, and `require_model_dir` checks that a model directory is there. Apart from the
server's adapter so that `mlflow_models`, which follows a URI through the server, and the
callers that only parse one share them without a client; `tracking` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import ModelciError, redact_url

if TYPE_CHECKING:
    from .s3 import S3Store

MLMODEL_FILE = "MLmodel"


@dataclass(frozen=True)
class LoggedModelUri:
    model_id: str  # models:/m-<id>


@dataclass(frozen=True)
class RegisteredVersionUri:
    name: str  # models:/<name>/<version>
    version: str


@dataclass(frozen=True)
class RegisteredAliasUri:
    name: str  # models:/<name>@<alias>
    alias: str


@dataclass(frozen=True)
class RunArtifactUri:
    run_id: str  # runs:/<run_id>/<path>
    path: str


@dataclass(frozen=True)
class StorageUri:
    uri: str  # s3://... or mlflow-artifacts:/...


ModelReference = (
    LoggedModelUri | RegisteredVersionUri | RegisteredAliasUri | RunArtifactUri | StorageUri
)

_SUPPORTED_MODEL_URIS = (
    "models:/m-<id>, models:/<name>/<version>, models:/<name>@<alias>, runs:/<run_id>/<path>, "
    "mlflow-artifacts:/<path> or s3://<bucket>/<path>"
)


def parse_model_uri(uri: str) -> ModelReference:
    """Classify a model URI; ModelciError for anything KServe could not be given."""
    scheme, _, rest = uri.partition(":")
    if scheme == "models":
        return _parse_models_uri(uri, rest.lstrip("/"))
    if scheme == "runs":
        run_id, _, path = rest.lstrip("/").partition("/")
        if run_id and path.strip("/"):
            return RunArtifactUri(run_id, path.strip("/"))
    elif scheme in ("s3", "mlflow-artifacts") and rest.strip("/"):
        return StorageUri(uri)
    raise ModelciError(f"unsupported model URI '{uri}'; expected one of {_SUPPORTED_MODEL_URIS}")


def _parse_models_uri(uri: str, rest: str) -> ModelReference:
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias and "/" not in alias:
            return RegisteredAliasUri(name, alias)
    elif "/" in rest:
        name, _, version = rest.rpartition("/")
        if name and version.isdigit():
            return RegisteredVersionUri(name, version)
    elif rest.startswith("m-") and len(rest) > 2:
        return LoggedModelUri(rest)
    raise ModelciError(f"unsupported model URI '{uri}'; expected one of {_SUPPORTED_MODEL_URIS}")


def map_artifact_uri(artifact_uri: str, artifacts_destination: str) -> str:
    """The s3:// location of an artifact URI the MLflow server handed out.

    A server that proxies artifacts (`mlflow server --artifacts-destination s3://B/P`) gives
    clients `mlflow-artifacts:/X`, stored at `s3://B/P/X`; KServe needs the latter.
    """
    parts = urlsplit(artifact_uri)
    if parts.scheme == "s3":
        return artifact_uri.rstrip("/")
    if parts.scheme != "mlflow-artifacts":
        raise ModelciError(
            f"model files are at '{redact_url(artifact_uri)}', which KServe cannot read; "
            "the MLflow server must store artifacts in S3 (--artifacts-destination s3://... "
            "or an s3:// --default-artifact-root)"
        )
    if not artifacts_destination.strip():
        raise ModelciError(
            f"'{artifact_uri}' is proxied by the MLflow server, and MODELCI_ARTIFACTS_DESTINATION "
            "is not set; set it to the s3:// URI the server was started with "
            "(mlflow server --artifacts-destination)"
        )
    if not artifacts_destination.startswith("s3://"):
        raise ModelciError(
            f"MODELCI_ARTIFACTS_DESTINATION is '{redact_url(artifacts_destination)}'; "
            "expected the s3://bucket/prefix the MLflow server stores artifacts in"
        )
    return f"{artifacts_destination.rstrip('/')}/{parts.path.strip('/')}".rstrip("/")


def require_model_dir(store: S3Store, storage_uri: str) -> str:
    """Return `storage_uri` if it holds an `MLmodel` file; ModelciError naming it otherwise."""
    if not store.exists(f"{storage_uri.rstrip('/')}/{MLMODEL_FILE}"):
        raise ModelciError(
            f"no {MLMODEL_FILE} file in {storage_uri}: this is not an MLflow model directory. "
            "Check that the training script logs the model with mlflow.<flavor>.log_model and "
            "that MODELCI_ARTIFACTS_DESTINATION matches the MLflow server's "
            "--artifacts-destination"
        )
    return storage_uri
