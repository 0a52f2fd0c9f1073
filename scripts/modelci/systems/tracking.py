"""The MLflow adapter: the only module that talks to MLflow.

`Tracker` calls the server's REST API through `mlflow_rest.RestClient`: `import mlflow` costs
over a second, more than the calls of a gate or resolve job together. Only an artifact
outside the server's artifact proxy is read with MLflow's own code (imported then). Every
call goes through `Tracker._call`, which retries connection failures a bounded number of
times and turns the server's errors into `ModelciError`s that name the server and what to
check.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ..errors import ModelciError, redact_url
from .mlflow_rest import PROXY_SCHEME, RestClient, RestError, Run

if TYPE_CHECKING:
    from ..config.settings import Pipeline
    from ..lifecycle.gate import GateResult
    from .s3 import S3Store

T = TypeVar("T")

# Run tags, all in the `modelci.` namespace.
TAG_PROJECT = "modelci.project"
TAG_BRANCH = "modelci.branch"
TAG_COMMIT = "modelci.commit"
TAG_PIPELINE_ID = "modelci.pipeline_id"
TAG_PIPELINE_URL = "modelci.pipeline_url"
TAG_ENVIRONMENT = "modelci.environment"
TAG_MODEL = "modelci.model"
TAG_ENV_ARCHIVE = "modelci.env_archive"  # s3:// URI of the environment archive the run used
TAG_ENV_SHA256 = "modelci.env_archive_sha256"  # its sha256 when the run trained
# sha256 of the model directory the run logged (S3Store.tree_sha256), taken by the train job
TAG_MODEL_SHA256 = "modelci.model_sha256"
TAG_GATE = "modelci.gate"
TAG_GATE_REASONS = "modelci.gate_reasons"
# Set by hand in the MLflow UI to an environment name ("b-feature-x", "staging") to choose
# the run that environment serves, overriding the newest run that passed the gate.
PIN_TAG = "modelci.pin"

GATE_PASSED = "passed"
GATE_FAILED = "failed"
RUN_END_STATUSES = ("FINISHED", "FAILED", "KILLED")
MLMODEL_FILE = "MLmodel"

_MAX_TAG_VALUE = 5000  # MLflow rejects longer tag values on some backends
_MAX_RESOLVE_DEPTH = 4  # models:/name@alias -> models:/m-id -> storage: two hops in practice
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")\]]*")


def provenance_tags(pipeline: Pipeline, environment: str, model: str) -> dict[str, str]:
    """Tags every training run gets: who trained it, from which commit, for which environment."""
    return {
        TAG_PROJECT: pipeline.project,
        TAG_BRANCH: pipeline.branch,
        TAG_COMMIT: pipeline.commit,
        TAG_PIPELINE_ID: pipeline.pipeline_id,
        TAG_PIPELINE_URL: pipeline.pipeline_url,
        TAG_ENVIRONMENT: environment,
        TAG_MODEL: model,
    }


def gate_tags(result: GateResult) -> dict[str, str]:
    """`modelci.gate` and a readable `modelci.gate_reasons` (failed checks, or all passed)."""
    failures = [f"{check.name}: {check.message}" for check in result.checks if not check.passed]
    reasons = "; ".join(failures) if failures else "all checks passed"
    if len(reasons) > _MAX_TAG_VALUE:
        reasons = reasons[: _MAX_TAG_VALUE - 3] + "..."
    return {TAG_GATE: GATE_PASSED if result.passed else GATE_FAILED, TAG_GATE_REASONS: reasons}


# ---------------------------------------------------------------------------------------------
# Model URIs (pure)


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


def _filter_value(value: str) -> str:
    """A quoted literal for an MLflow search filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ModelciError(f"cannot search MLflow for a value with both quote characters: {value!r}")


# ---------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class LoggedModelInfo:
    """An MLflow 3 LoggedModel; `uri` is what `resolve_storage_uri` takes."""

    model_id: str
    name: str
    artifact_location: str  # mlflow-artifacts:/... or s3://...
    status: str  # "READY" once its files are uploaded
    created_ms: int

    @property
    def uri(self) -> str:
        return f"models:/{self.model_id}"


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered model version: what a stand serves."""

    name: str
    version: str
    run_id: str
    source: str  # models:/m-<id> (MLflow 3) or the artifact location
    tags: dict[str, str]
    aliases: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@contextlib.contextmanager
def _bounded_mlflow_http(timeout_seconds: int) -> Iterator[None]:
    """MLflow's own HTTP retries default to ~4 minutes; `Tracker` does the retrying instead.

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


class Tracker:
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

    # -- runs ---------------------------------------------------------------------------------

    def start_run(self, experiment: str, tags: Mapping[str, str], run_name: str) -> str:
        """Create a RUNNING run (and the experiment if missing); return its id."""
        experiment_id = self._ensure_experiment(experiment)
        run = self._call(
            f"create a run in experiment '{experiment}'",
            self._client.create_run,
            experiment_id,
            tags=dict(tags),
            run_name=run_name,
        )
        return run.info.run_id

    def end_run(self, run_id: str, status: str) -> None:
        if status not in RUN_END_STATUSES:
            raise ValueError(f"run status {status!r} is not one of {RUN_END_STATUSES}")
        self._call(f"end run {run_id}", self._client.set_terminated, run_id, status)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._call(f"tag run {run_id}", self._client.log_batch, run_id, tags=dict(tags))

    def get_run(self, run_id: str) -> Run:
        return self._call(f"read run {run_id}", self._client.get_run, run_id)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric the run logged."""
        return dict(self.get_run(run_id).data.metrics)

    def find_run(self, experiment: str, environment: str, branch: str) -> Run:
        """The run `environment` serves: pinned by hand, else the newest that passed the gate."""
        experiment_id = self.find_experiment(experiment)
        pinned = f"tags.`{PIN_TAG}` = {_filter_value(environment)}"
        passed = (
            f"tags.`{TAG_BRANCH}` = {_filter_value(branch)} "
            f"and tags.`{TAG_ENVIRONMENT}` = {_filter_value(environment)} "
            f"and tags.`{TAG_GATE}` = '{GATE_PASSED}' and attributes.status = 'FINISHED'"
        )
        if experiment_id is not None:
            for search in (pinned, passed):
                run = self._newest_run(experiment_id, search)
                if run is not None:
                    return run
        raise ModelciError(
            f"no run to serve for environment '{environment}' in MLflow experiment "
            f"'{experiment}' ({self._where}): no run has tag {PIN_TAG}={environment}, and no "
            f"FINISHED run has tags {TAG_BRANCH}={branch}, {TAG_ENVIRONMENT}={environment}, "
            f"{TAG_GATE}={GATE_PASSED}. Run the training pipeline on branch '{branch}' until a "
            f"run passes the quality gate, or pin a run: open it in the MLflow UI and add the tag "
            f"{PIN_TAG} with value {environment}."
        )

    def download_artifact_file(self, run_id: str, path: str, where: Path) -> Path:
        """One artifact file of a run, streamed into the directory `where`: its local path."""
        artifact_root = self.get_run(run_id).info.artifact_uri
        uri = f"{artifact_root.rstrip('/')}/{path}"
        what = f"download artifact {path} of run {run_id}"
        return Path(self._call(what, self._download, uri, str(where)))

    def log_artifact_text(self, run_id: str, path: str, text: str, content_type: str) -> None:
        """Store `text` (UTF-8) as the artifact file `path` of a run, e.g. a picture (SVG)."""
        artifact_root = self.get_run(run_id).info.artifact_uri.rstrip("/")
        what = f"log artifact {path} of run {run_id}"
        self._call(what, self._upload, artifact_root, path, text.encode(), content_type)

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

    def log_finished_run(
        self, experiment: str, tags: Mapping[str, str], metrics: Mapping[str, float], name: str
    ) -> str:
        """A FINISHED run holding `tags` and `metrics`, e.g. one monitoring check."""
        run_id = self.start_run(experiment, tags, run_name=name)
        now = int(time.time() * 1000)
        logged = [
            {"key": key, "value": value, "timestamp": now, "step": 0}
            for key, value in metrics.items()
        ]
        self._call(f"log metrics of run {run_id}", self._client.log_batch, run_id, metrics=logged)
        self.end_run(run_id, "FINISHED")
        return run_id

    def newest_run(self, experiment: str, tags: Mapping[str, str]) -> Run | None:
        """The newest run of `experiment` carrying every tag of `tags`; None if there is none."""
        experiment_id = self.find_experiment(experiment)
        if experiment_id is None:
            return None
        search = " and ".join(f"tags.`{k}` = {_filter_value(v)}" for k, v in tags.items())
        return self._newest_run(experiment_id, search)

    def _newest_run(self, experiment_id: str, filter_string: str) -> Run | None:
        runs = self._call(
            "search runs",
            self._client.search_runs,
            [experiment_id],
            filter_string=filter_string,
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def find_experiment(self, name: str) -> str | None:
        """The id of experiment `name`, None when there is none (a read: the train job also
        asks it first, to know the server answers before it writes anything elsewhere)."""
        experiment = self._call(
            f"look up experiment '{name}'", self._client.get_experiment_by_name, name
        )
        if experiment is None:
            return None
        if experiment.lifecycle_stage == "deleted":
            raise ModelciError(
                f"MLflow experiment '{name}' is deleted ({self._where}); restore it in the "
                "MLflow UI, or remove it for good with `mlflow gc`, then rerun the job"
            )
        return experiment.experiment_id

    def _ensure_experiment(self, name: str) -> str:
        existing = self.find_experiment(name)
        if existing is not None:
            return existing
        created = self._call(
            f"create experiment '{name}'",
            self._client.create_experiment,
            name,
            none_on=("RESOURCE_ALREADY_EXISTS",),  # another pipeline created it just now
        )
        if created is None:
            created = self.find_experiment(name)
        if created is None:
            raise ModelciError(f"{self._where}: experiment '{name}' vanished while creating it")
        return created

    # -- models -------------------------------------------------------------------------------

    def logged_models(self, run_id: str, experiment_id: str | None = None) -> list[LoggedModelInfo]:
        """MLflow 3 LoggedModels whose source run is `run_id` (of `experiment_id`, when the
        caller knows it: one request fewer), newest first."""
        if experiment_id is None:
            experiment_id = self.get_run(run_id).info.experiment_id
        found = self._call(
            f"search the logged models of run {run_id}",
            self._client.search_logged_models,
            experiment_ids=[experiment_id],
            filter_string=f"source_run_id = '{run_id}'",
        )
        models = [
            LoggedModelInfo(
                model_id=model.model_id,
                name=model.name,
                artifact_location=model.artifact_location,
                status=str(model.status),
                created_ms=int(model.creation_timestamp or 0),
            )
            for model in found
        ]
        return sorted(models, key=lambda model: model.created_ms, reverse=True)

    def model_uri_for_run(
        self, run_id: str, name: str | None = None, *, experiment_id: str | None = None
    ) -> str:
        """The model a run produced: its newest ready LoggedModel (named `name`, if given).

        Falls back to a top-level run artifact directory holding an MLmodel file (a model
        saved with `save_model` and uploaded with `log_artifacts`).
        """
        for model in self.logged_models(run_id, experiment_id):
            if model.status == "READY" and name in (None, model.name):
                return model.uri
        directory = self._run_artifact_model_dir(run_id)
        if directory is not None and name in (None, directory):
            return f"runs:/{run_id}/{directory}"
        named = f" named '{name}'" if name else ""
        raise ModelciError(
            f"run {run_id} has no logged model{named} ({self._where}); the training script "
            "must log one, e.g. mlflow.sklearn.log_model(model, name='model')"
        )

    def model_flavors(self, model_uri: str) -> list[str]:
        """The flavors in a logged model's MLmodel file (downloads that one file).

        Read as plain YAML: loading it with MLflow's `Model` class needs numpy, which the
        client-only `mlflow-skinny` that modelci runs with does not have."""
        from ruamel.yaml import YAML

        location = self._artifact_location(parse_model_uri(model_uri), depth=0)
        text = self._read_artifact(
            f"{location.rstrip('/')}/{MLMODEL_FILE}", f"read the MLmodel file of {model_uri}"
        )
        document = YAML(typ="safe").load(text.decode("utf-8"))
        flavors = document.get("flavors") if isinstance(document, dict) else None
        return sorted(flavors) if isinstance(flavors, dict) else []

    def _run_artifact_model_dir(self, run_id: str) -> str | None:
        top = self._call(f"list artifacts of run {run_id}", self._client.list_artifacts, run_id)
        for entry in top:
            if not entry.is_dir:
                continue
            inside = self._call(
                f"list artifacts of run {run_id}", self._client.list_artifacts, run_id, entry.path
            )
            if any(item.path.rsplit("/", 1)[-1] == MLMODEL_FILE for item in inside):
                return entry.path
        return None

    def resolve_storage_uri(self, model_uri: str, artifacts_destination: str) -> str:
        """The s3:// directory holding `MLmodel` for any model URI MLflow hands out."""
        location = self._artifact_location(parse_model_uri(model_uri), depth=0)
        return map_artifact_uri(location, artifacts_destination)

    def _artifact_location(self, reference: ModelReference, depth: int) -> str:
        if depth > _MAX_RESOLVE_DEPTH:
            raise ModelciError(f"model URI chain too long while resolving {reference}")
        match reference:
            case StorageUri(uri):
                return uri
            case LoggedModelUri(model_id):
                return self._logged_model(model_id).artifact_location
            case RunArtifactUri(run_id, path):
                return self._run_artifact_location(run_id, path)
            case RegisteredVersionUri(name, version):
                version_entity = self._call(
                    f"read version {version} of registered model '{name}'",
                    self._client.get_model_version,
                    name,
                    version,
                )
                return self._version_location(version_entity, depth)
            case RegisteredAliasUri(name, alias):
                version_entity = self._call(
                    f"read alias '{alias}' of registered model '{name}'",
                    self._client.get_model_version_by_alias,
                    name,
                    alias,
                )
                return self._version_location(version_entity, depth)
        raise AssertionError(reference)

    def _version_location(self, version: Any, depth: int) -> str:
        model_id = getattr(version, "model_id", None)
        source = f"models:/{model_id}" if model_id else version.source
        return self._artifact_location(parse_model_uri(source), depth + 1)

    def _logged_model(self, model_id: str) -> Any:
        return self._call(f"read logged model {model_id}", self._client.get_logged_model, model_id)

    def _run_artifact_location(self, run_id: str, path: str) -> str:
        # MLflow 3 resolves runs:/<id>/<name> to the run's LoggedModel of that name, whose
        # files live outside the run's artifact directory.
        for model in self.logged_models(run_id):
            if model.name == path:
                return model.artifact_location
        artifact_root = self.get_run(run_id).info.artifact_uri
        return f"{artifact_root.rstrip('/')}/{path}"

    # -- registry -----------------------------------------------------------------------------

    def register_version(
        self, registered_model: str, model_uri: str, run_id: str, tags: Mapping[str, str]
    ) -> str:
        """Register `model_uri` as a new version (creating the registered model); its number."""
        self._call(
            f"create registered model '{registered_model}'",
            self._client.create_registered_model,
            registered_model,
            none_on=("RESOURCE_ALREADY_EXISTS",),
        )
        reference = parse_model_uri(model_uri)
        # MLflow 3 accepts a models:/m-<id> source only together with the model's id.
        model_id = reference.model_id if isinstance(reference, LoggedModelUri) else None
        version = self._call(
            f"register a version of '{registered_model}'",
            self._client.create_model_version,
            registered_model,
            model_uri,
            run_id=run_id,
            tags=dict(tags),
            model_id=model_id,
        )
        return str(version.version)

    def set_alias(self, registered_model: str, alias: str, version: str) -> None:
        self._call(
            f"point alias '{alias}' of '{registered_model}' at version {version}",
            self._client.set_registered_model_alias,
            registered_model,
            alias,
            version,
        )

    def served_metrics(self, registered_model: str, alias: str) -> dict[str, float] | None:
        """Metrics of the run behind models:/<name>@<alias>; None when there is no such model."""
        model = self._call(
            f"read registered model '{registered_model}'",
            self._client.get_registered_model,
            registered_model,
            none_on=("RESOURCE_DOES_NOT_EXIST",),
        )
        version = (model.aliases or {}).get(alias) if model is not None else None
        if version is None:
            return None
        entity = self._call(
            f"read version {version} of registered model '{registered_model}'",
            self._client.get_model_version,
            registered_model,
            str(version),
        )
        run_id = entity.run_id
        if not run_id and getattr(entity, "model_id", None):
            run_id = self._logged_model(entity.model_id).source_run_id
        return self.run_metrics(run_id) if run_id else {}

    def stand_version(self, registered_model: str, stand: str) -> ModelVersionInfo | None:
        """The version the alias `stand` points at; None without the model or the alias."""
        what = f"read alias '{stand}' of registered model '{registered_model}'"
        try:
            entity = self._call(
                what,
                self._client.get_model_version_by_alias,
                registered_model,
                stand,
                none_on=("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"),
                denied_raw=True,
            )
        except RestError as denied:
            # MLflow's auth app answers 403, not 404, to a user without a permission of their
            # own who reads an alias of a registered model that does not exist (yet).
            if not self._registered_model_exists(registered_model):
                return None
            raise self._translate(what, denied) from None
        return self._version_info(entity) if entity is not None else None

    def _registered_model_exists(self, registered_model: str) -> bool:
        found = self._call(
            f"read registered model '{registered_model}'",
            self._client.get_registered_model,
            registered_model,
            none_on=("RESOURCE_DOES_NOT_EXIST",),
        )
        return found is not None

    def model_version(self, registered_model: str, version: str) -> ModelVersionInfo | None:
        entity = self._call(
            f"read version {version} of registered model '{registered_model}'",
            self._client.get_model_version,
            registered_model,
            str(version),
            none_on=("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"),
        )
        return self._version_info(entity) if entity is not None else None

    def version_of_run(self, registered_model: str, run_id: str) -> ModelVersionInfo | None:
        """The newest version of `registered_model` registered from `run_id`, if any."""
        found = self._call(
            f"search the versions of '{registered_model}'",
            self._client.search_model_versions,
            f"name = {_filter_value(registered_model)} and run_id = {_filter_value(run_id)}",
        )
        versions = sorted((self._version_info(v) for v in found), key=lambda v: int(v.version))
        return versions[-1] if versions else None

    def version_for_run(
        self, registered_model: str, run_id: str, tags: Mapping[str, str]
    ) -> tuple[ModelVersionInfo, bool]:
        """The version of `registered_model` registered from `run_id`, registering the run's
        model first (with `tags`) when there is none; True when it was registered now."""
        version = self.version_of_run(registered_model, run_id)
        if version is not None:
            return version, False
        number = self.register_version(
            registered_model, self.model_uri_for_run(run_id), run_id, tags
        )
        return self.model_version(registered_model, number), True

    def latest_version_number(self, registered_model: str) -> int | None:
        """The highest version number of `registered_model`; None when it has none."""
        found = self._call(
            f"search the versions of '{registered_model}'",
            self._client.search_model_versions,
            f"name = {_filter_value(registered_model)}",
            max_results=1,
            order_by=["version_number DESC"],
        )
        return max((int(version.version) for version in found), default=None)

    def set_version_tags(
        self, registered_model: str, version: str, tags: Mapping[str, str]
    ) -> None:
        for key, value in tags.items():
            self._call(
                f"tag version {version} of '{registered_model}'",
                self._client.set_model_version_tag,
                registered_model,
                str(version),
                key,
                value,
            )

    def _version_info(self, entity: Any) -> ModelVersionInfo:
        run_id = entity.run_id or ""
        if not run_id and getattr(entity, "model_id", None):
            run_id = self._logged_model(entity.model_id).source_run_id or ""
        return ModelVersionInfo(
            name=entity.name,
            version=str(entity.version),
            run_id=run_id,
            source=entity.source or "",
            tags=dict(entity.tags or {}),
            aliases=tuple(entity.aliases or ()),
        )

    # -- the merge request review: reads only --------------------------------------------------

    def model_document(self, model_uri: str) -> dict[str, Any]:
        """The model's MLmodel file, parsed as plain YAML ({} when it is not a mapping): its
        signature, flavors, saved input example."""
        from ruamel.yaml import YAML

        location = self._artifact_location(parse_model_uri(model_uri), depth=0)
        text = self._read_artifact(
            f"{location.rstrip('/')}/{MLMODEL_FILE}", f"read the MLmodel file of {model_uri}"
        )
        document = YAML(typ="safe").load(text.decode("utf-8"))
        return document if isinstance(document, dict) else {}

    def run_datasets(self, run_id: str) -> list[dict[str, Any]]:
        """The run's dataset inputs (`mlflow.log_input`): name, digest, source type, profile
        and context (the `mlflow.data.context` input tag) of each."""
        found = self._call(
            f"read the dataset inputs of run {run_id}", self._client.get_run_inputs, run_id
        )
        datasets = []
        for item in found:
            dataset = item.get("dataset") or {}
            tags = {tag.get("key"): tag.get("value", "") for tag in item.get("tags") or ()}
            datasets.append(
                {
                    "name": str(dataset.get("name", "")),
                    "digest": str(dataset.get("digest", "")),
                    "source_type": str(dataset.get("source_type", "")),
                    "profile": str(dataset.get("profile", "") or ""),
                    "context": str(tags.get("mlflow.data.context", "")),
                }
            )
        return datasets

    def stand_versions(
        self, registered_model: str, stand: str, limit: int = 20
    ) -> list[ModelVersionInfo]:
        """The versions `stand` has served, newest first, at most `limit`: those whose audit
        tags (`modelci.stand.<stand>.*`) say a stand job moved its alias there, and the one
        the alias names now."""
        if not self._registered_model_exists(registered_model):
            return []
        found = self._call(
            f"search the versions of '{registered_model}'",
            self._client.search_model_versions,
            f"name = {_filter_value(registered_model)}",
            max_results=1000,
            order_by=["version_number DESC"],
        )
        prefix = f"modelci.stand.{stand}."
        served = [
            version
            for version in found
            if stand in (version.aliases or ()) or any(k.startswith(prefix) for k in version.tags)
        ]
        served.sort(key=lambda version: int(version.version), reverse=True)
        return [self._version_info(version) for version in served[:limit]]

    # -- plumbing -----------------------------------------------------------------------------

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
