"""The connection to an MLflow server that every part of `tracking.Tracker` shares.

`MlflowBase` holds the REST client and the policy of every call: `_call` retries connection
failures a bounded number of times and turns the server's errors into `ModelciError`s that
name the server and what to check. It also moves an artifact's bytes, through the server's
artifact proxy or, for an artifact outside it, with MLflow's own code (imported only then,
with MLflow's HTTP retries bounded so they do not stack on `_call`'s). The operations
themselves live in the mixins composed with it (`mlflow_runs`, `mlflow_models`,
`mlflow_registry`); this module knows how to ask, not what.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ModelciError, redact_url
from .mlflow_rest import PROXY_SCHEME, RestClient, RestError

T = TypeVar("T")

_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")\]]*")


def filter_literal(value: str) -> str:
    """A quoted literal for an MLflow search filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ModelciError(f"cannot search MLflow for a value with both quote characters: {value!r}")


class MlflowBase:
    """The client, the retry and error policy, and the transfer of artifact bytes."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        attempts: int = 4,
        backoff_seconds: float = 1.0,
        request_timeout: int = 30,
    ) -> None:
        if not tracking_uri.strip():
            raise ModelciError(
                "MLFLOW_TRACKING_URI is not set; set it to the MLflow server's URL in the "
                "GitLab group's CI/CD variables"
            )
        self.tracking_uri = tracking_uri
        self._where = f"MLflow at {redact_url(tracking_uri)}"
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds
        self._timeout = max(1, int(request_timeout))
        self._client = RestClient(tracking_uri, timeout_seconds=self._timeout)

    # -- calls --------------------------------------------------------------------------------

    def _call(
        self,
        what: str,
        function: Callable[..., T],
        *args: Any,
        none_on: tuple[str, ...] = (),
        denied_raw: bool = False,
        **kwargs: Any,
    ) -> T | Any:
        """Call MLflow, retrying connection failures; None for error codes in `none_on`. With
        `denied_raw`, a refusal (HTTP 403) is raised as the RestError it is, for the caller to
        tell apart."""
        started = time.monotonic()
        for attempt in range(1, self._attempts + 1):
            try:
                return function(*args, **kwargs)
            except RestError as exc:
                if exc.error_code in none_on:
                    return None
                if denied_raw and _denied(exc):
                    raise
                if not exc.transient:
                    raise self._translate(what, exc) from None
                if attempt == self._attempts:
                    raise self._unreachable(what, exc, started) from None
                time.sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _unreachable(self, what: str, cause: RestError, started: float) -> ModelciError:
        elapsed = time.monotonic() - started
        state = "keeps failing" if cause.status else "is unreachable"
        return ModelciError(
            f"{self._where} {state}: could not {what} after {self._attempts} attempts "
            f"in {elapsed:.1f} s ({_short_reason(cause)}). Check that MLFLOW_TRACKING_URI is "
            f"right, that the server is up ({redact_url(self.tracking_uri)}/health answers OK) "
            "and that this runner can reach it (proxy, firewall, network policy)."
        )

    def _translate(self, what: str, exc: Any) -> ModelciError:
        status = exc.get_http_status_code()
        if exc.error_code == "UNAUTHENTICATED" or status == 401 or _denied(exc):
            return ModelciError(
                f"{self._where} refused to {what} (HTTP {status}): check the credentials in "
                "MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD "
                "(in the stand jobs promote, rollback and deploy-version: their protected "
                "counterparts MODELCI_STANDS_MLFLOW_TRACKING_*: docs/platform/setup.md, 'Stands "
                "and credentials')"
            )
        if exc.timeout:
            return ModelciError(
                f"{self._where} did not answer within {self._timeout} s: could not {what}. "
                "The server may be overloaded; rerun the job, or check the server's health."
            )
        return ModelciError(f"{self._where}: could not {what}: {redact_url(exc.message)}")

    # -- artifact bytes -----------------------------------------------------------------------

    def _upload(self, artifact_root: str, path: str, data: bytes, content_type: str) -> None:
        """Through the server's artifact proxy, else with MLflow's own artifact repositories."""
        if artifact_root.startswith(PROXY_SCHEME):
            self._client.upload_artifact_uri(f"{artifact_root}/{path}", data, content_type)
            return
        import tempfile

        from mlflow.exceptions import MlflowException
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        with tempfile.TemporaryDirectory(prefix="modelci-artifact-") as where:
            local = Path(where) / Path(path).name
            local.write_bytes(data)
            parent = str(Path(path).parent) if Path(path).parent != Path(".") else None
            try:
                with _bounded_mlflow_http(self._timeout):
                    get_artifact_repository(artifact_root).log_artifact(str(local), parent)
            except (MlflowException, OSError) as error:
                raise RestError(f"write {artifact_root}/{path}: {error}") from error

    def _read_artifact(self, artifact_uri: str, what: str) -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="modelci-artifact-") as where:
            local = self._call(what, self._download, artifact_uri, where)
            return Path(local).read_bytes()

    def _download(self, artifact_uri: str, where: str) -> str:
        """One artifact file: through the server's artifact proxy, else with MLflow's own
        artifact repositories (S3 and the others a server without the proxy hands out)."""
        if artifact_uri.startswith(PROXY_SCHEME):
            return self._client.download_artifact_uri(artifact_uri, where)
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        try:
            with _bounded_mlflow_http(self._timeout):
                return download_artifacts(
                    artifact_uri=artifact_uri, dst_path=where, tracking_uri=self.tracking_uri
                )
        except (MlflowException, OSError) as error:
            raise RestError(f"read {artifact_uri}: {error}") from error


@contextlib.contextmanager
def _bounded_mlflow_http(timeout_seconds: int) -> Iterator[None]:
    """MLflow's own HTTP retries default to ~4 minutes; `MlflowBase._call` does the retrying
    instead.

    Set only around a call into MLflow's code (an artifact outside the server's proxy), so a
    training process started later does not inherit it.
    """
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_seconds),
    }
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _denied(exc: RestError) -> bool:
    return exc.error_code == "PERMISSION_DENIED" or exc.get_http_status_code() == 403


def _short_reason(exc: RestError) -> str:
    if exc.status:
        return f"HTTP {exc.status}"
    match = _ERRNO.search(str(exc))
    return match.group(0).strip() if match else str(exc)[:160]
