"""MLflow's REST API, for `tracking.Tracker`: the calls modelci makes, over urllib.

`import mlflow` takes over a second (the package imports its GenAI, gateway and FastAPI
modules), and every job after training paid it for a handful of HTTP calls. This client
speaks the same REST API (`/api/2.0/mlflow/...`, MLflow 3's logged models, the artifact
proxy `mlflow-artifacts`) with the method names and result attributes of `MlflowClient`
that `Tracker` uses, so `Tracker` keeps its semantics and its retry and error policy.

Authentication as MLflow's client does it, from the environment at each call:
MLFLOW_TRACKING_TOKEN (bearer) or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (basic);
MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH and
MLFLOW_TRACKING_CLIENT_CERT_PATH for TLS.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
PROXY_SCHEME = "mlflow-artifacts:"


class RestError(Exception):
    """An answer of the server that is an error (`error_code` as MLflow names it), or no
    answer at all (`status` 0). `transient`: worth another attempt (no connection, or an
    overloaded server's 429/502/503/504); `timeout`: the server took too long."""

    def __init__(
        self,
        message: str,
        error_code: str = "",
        status: int = 0,
        *,
        transient: bool = False,
        timeout: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status
        self.transient = transient
        self.timeout = timeout

    def get_http_status_code(self) -> int:
        return self.status


# --- what the calls return: the attributes `Tracker` and its callers read ----------------------


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    status: str
    start_time: int
    artifact_uri: str
    run_name: str = ""


@dataclass(frozen=True)
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    lifecycle_stage: str


@dataclass(frozen=True)
class LoggedModel:
    model_id: str
    name: str
    artifact_location: str
    status: str
    creation_timestamp: int
    source_run_id: str


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str]
    aliases: tuple[str, ...]
    model_id: str


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    aliases: dict[str, str]  # alias -> version


@dataclass(frozen=True)
class FileInfo:
    path: str
    is_dir: bool


def _registered_model(found: Mapping[str, Any], name: str = "") -> RegisteredModel:
    aliases = {item["alias"]: str(item["version"]) for item in found.get("aliases", [])}
    return RegisteredModel(found.get("name", name), aliases)


def _pairs(items: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: item.get("value", "") for item in items or ()}


def _run(payload: Mapping[str, Any]) -> Run:
    info, data = payload.get("info", {}), payload.get("data", {})
    return Run(
        info=RunInfo(
            run_id=info.get("run_id", ""),
            experiment_id=str(info.get("experiment_id", "")),
            status=info.get("status", ""),
            start_time=int(info.get("start_time", 0)),
            artifact_uri=info.get("artifact_uri", ""),
            run_name=info.get("run_name", ""),
        ),
        data=RunData(
            metrics={k: float(v) for k, v in _pairs(data.get("metrics")).items()},
            params=_pairs(data.get("params")),
            tags=_pairs(data.get("tags")),
        ),
    )


def _logged_model(payload: Mapping[str, Any]) -> LoggedModel:
    info = payload.get("info", payload)
    status = info.get("status", "")
    return LoggedModel(
        model_id=info.get("model_id", ""),
        name=info.get("name", ""),
        artifact_location=info.get("artifact_uri", ""),
        status=status.removeprefix("LOGGED_MODEL_").replace("UPLOAD_", ""),
        creation_timestamp=int(info.get("creation_timestamp_ms", 0)),
        source_run_id=info.get("source_run_id", ""),
    )


def _version(payload: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=payload.get("name", ""),
        version=str(payload.get("version", "")),
        run_id=payload.get("run_id", ""),
        source=payload.get("source", ""),
        tags=_pairs(payload.get("tags")),
        aliases=tuple(payload.get("aliases", ())),
        model_id=payload.get("model_id", ""),
    )


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


# --- the client --------------------------------------------------------------------------------


class RestClient:
    """The subset of `MlflowClient` that `Tracker` calls, over HTTP."""

    def __init__(self, tracking_uri: str, timeout_seconds: float = 30) -> None:
        self._base, self._url_auth = _without_userinfo(tracking_uri.rstrip("/"))
        self._timeout = timeout_seconds
        self._opener: Any = None  # made on the first call (TLS settings are read then)

    # experiments and runs

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            found = self._get("experiments/get-by-name", experiment_name=name)["experiment"]
        except RestError as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return Experiment(
            str(found["experiment_id"]), found.get("name", ""), found.get("lifecycle_stage", "")
        )

    def create_experiment(self, name: str) -> str:
        return str(self._post("experiments/create", name=name)["experiment_id"])

    def create_run(self, experiment_id: str, tags: Mapping[str, str], run_name: str) -> Run:
        created = self._post(
            "runs/create",
            experiment_id=experiment_id,
            start_time=int(time.time() * 1000),
            tags=_tag_list(tags),
            run_name=run_name,
        )
        return _run(created["run"])

    def get_run(self, run_id: str) -> Run:
        return _run(self._get("runs/get", run_id=run_id)["run"])

    def get_run_inputs(self, run_id: str) -> list[dict[str, Any]]:
        """The run's dataset inputs as MLflow returns them (`inputs.dataset_inputs`)."""
        run = self._get("runs/get", run_id=run_id)["run"]
        return list((run.get("inputs") or {}).get("dataset_inputs") or ())

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
    ) -> list[Run]:
        found = self._post(
            "runs/search",
            experiment_ids=list(experiment_ids),
            filter=filter_string,
            order_by=list(order_by),
            max_results=max_results,
        )
        return [_run(run) for run in found.get("runs", [])]

    def set_terminated(self, run_id: str, status: str) -> None:
        self._post("runs/update", run_id=run_id, status=status, end_time=int(time.time() * 1000))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Mapping[str, Any]] = (),
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self._post(
            "runs/log-batch", run_id=run_id, metrics=list(metrics), tags=_tag_list(tags or {})
        )

    # artifacts

    def list_artifacts(self, run_id: str, path: str = "") -> list[FileInfo]:
        query = {"run_id": run_id, **({"path": path} if path else {})}
        files = self._get("artifacts/list", **query).get("files", [])
        return [FileInfo(f["path"], bool(f.get("is_dir"))) for f in files]

    def download_artifact_uri(self, artifact_uri: str, dst_path: str) -> str:
        if not artifact_uri.startswith(PROXY_SCHEME):
            raise RestError(
                f"{artifact_uri} is not behind the server's artifact proxy (mlflow-artifacts:/); "
                "serve artifacts through the tracking server (`mlflow server` does by default)",
                "INVALID_PARAMETER_VALUE",
            )
        relative = artifact_uri.removeprefix(PROXY_SCHEME).lstrip("/")
        target = Path(dst_path) / Path(relative).name
        self._request("GET", f"{ARTIFACTS_API}/{quote(relative)}", into=target)
        return str(target)

    def upload_artifact_uri(self, artifact_uri: str, data: bytes, content_type: str) -> None:
        """PUT one artifact file through the server's artifact proxy."""
        relative = artifact_uri.removeprefix(PROXY_SCHEME).lstrip("/")
        self._request(
            "PUT", f"{ARTIFACTS_API}/{quote(relative)}", content=data, content_type=content_type
        )

    # logged models (MLflow 3)

    def search_logged_models(self, experiment_ids: Sequence[str], filter_string: str) -> list:
        found = self._post(
            "logged-models/search", experiment_ids=list(experiment_ids), filter=filter_string
        )
        return [_logged_model(model) for model in found.get("models", [])]

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return _logged_model(self._get(f"logged-models/{quote(model_id)}")["model"])

    # the registry

    def get_registered_model(self, name: str) -> RegisteredModel:
        found = self._get("registered-models/get", name=name)["registered_model"]
        return _registered_model(found, name)

    def create_registered_model(self, name: str) -> None:
        self._post("registered-models/create", name=name)

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        return _version(
            self._get("model-versions/get", name=name, version=version)["model_version"]
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        found = self._get("registered-models/alias", name=name, alias=alias)
        return _version(found["model_version"])

    def search_model_versions(
        self, filter_string: str, max_results: int = 1000, order_by: Sequence[str] = ()
    ) -> list[ModelVersion]:
        query: dict[str, Any] = {"filter": filter_string, "max_results": max_results}
        if order_by:
            query["order_by"] = list(order_by)
        found = self._get("model-versions/search", **query)
        return [_version(item) for item in found.get("model_versions", [])]

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str,
        tags: Mapping[str, str],
        model_id: str | None = None,
    ) -> ModelVersion:
        body = {"name": name, "source": source, "run_id": run_id, "tags": _tag_list(tags)}
        if model_id:
            body["model_id"] = model_id
        return _version(self._post("model-versions/create", **body)["model_version"])

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._post("model-versions/set-tag", name=name, version=version, key=key, value=value)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self._post("registered-models/alias", name=name, alias=alias, version=version)

    # HTTP (urllib: `requests` alone costs a tenth of a second to import)

    def _get(self, endpoint: str, /, **query: Any) -> dict[str, Any]:
        return json.loads(self._request("GET", f"{API}/{endpoint}", query=query) or b"{}")

    def _post(self, endpoint: str, /, **body: Any) -> dict[str, Any]:
        return json.loads(self._request("POST", f"{API}/{endpoint}", body=body) or b"{}")

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content: bytes | None = None,
        content_type: str = "application/json",
        into: Path | None = None,
    ) -> bytes:
        """The response's body; with `into`, written there as it arrives (b"" returned). The
        request's body is `body` as JSON, or the bytes `content`."""
        import shutil
        import urllib.error
        import urllib.request

        url = f"{self._base}{path}" + (f"?{urlencode(query, doseq=True)}" if query else "")
        data = json.dumps(body).encode() if body is not None else content
        headers = _headers(os.environ, self._url_auth)
        if data is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._open(request) as response:
                if into is None:
                    return response.read()
                with into.open("wb") as out:
                    shutil.copyfileobj(response, out, 1 << 20)
                return b""
        except urllib.error.HTTPError as error:
            raise _error(method, path, error.code, error.read()) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            timeout = isinstance(reason, TimeoutError) or isinstance(error, TimeoutError)
            raise RestError(
                f"{method} {path}: {reason}", transient=not timeout, timeout=timeout
            ) from error

    def _open(self, request: Any) -> Any:
        import urllib.request

        if self._opener is None:
            handlers = [_no_redirects()]
            if self._base.startswith("https:"):  # loading the CA store costs 30 ms a time
                handlers.append(urllib.request.HTTPSHandler(context=_tls_context(os.environ)))
            self._opener = urllib.request.build_opener(*handlers)
        return self._opener.open(request, timeout=self._timeout)


_TRANSIENT_STATUS = frozenset({429, 502, 503, 504})


def _error(method: str, path: str, status: int, raw: bytes) -> RestError:
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = {}
    code = payload.get("error_code", "") if isinstance(payload, dict) else ""
    message = payload.get("message", "") if isinstance(payload, dict) else ""
    text = message or f"HTTP {status} for {method} {path}"
    return RestError(
        f"{code}: {text}" if code else text,
        code,
        status,
        transient=status in _TRANSIENT_STATUS,
    )


def _without_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """`url` without `user:password@` (urllib does not send it), and that pair."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    pair = (unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=netloc)), pair


def tracking_environment(tracking_uri: str, env: Mapping[str, str]) -> dict[str, str]:
    """The MLflow variables for a process of the model's own (training): the tracking URI
    without `user:password@`, which MLflow would print in its "View run at" line, and the pair
    as MLFLOW_TRACKING_USERNAME/PASSWORD unless a token or a user name is set already."""
    url, pair = _without_userinfo(tracking_uri)
    variables = {"MLFLOW_TRACKING_URI": url}
    has_own = env.get("MLFLOW_TRACKING_TOKEN") or env.get("MLFLOW_TRACKING_USERNAME")
    if pair is not None and not has_own:
        variables["MLFLOW_TRACKING_USERNAME"], variables["MLFLOW_TRACKING_PASSWORD"] = pair
    return variables


def _headers(env: Mapping[str, str], url_auth: tuple[str, str] | None) -> dict[str, str]:
    token = env.get("MLFLOW_TRACKING_TOKEN", "")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user = env.get("MLFLOW_TRACKING_USERNAME", "")
    password = env.get("MLFLOW_TRACKING_PASSWORD", "")
    if not (user or password) and url_auth:
        user, password = url_auth
    if user or password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    return {}


def _tls_context(env: Mapping[str, str]) -> ssl.SSLContext:
    if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(
            cafile=env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
        )
    if env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        context.load_cert_chain(env["MLFLOW_TRACKING_CLIENT_CERT_PATH"])
    return context


def _no_redirects():
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        """A redirect is an error: credentials go only to MLFLOW_TRACKING_URI."""

        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return NoRedirects()
