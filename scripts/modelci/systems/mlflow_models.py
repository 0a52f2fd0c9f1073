"""MLflow's logged models: `ModelsMixin`, one part of `tracking.Tracker`.

Which model a run produced, what its `MLmodel` file says (flavors, signature), and where its
files are: any model URI MLflow hands out (`models:/...`, `runs:/...`) is followed through
the server, hop by hop, to the storage location KServe is given. Apart from the runs and the
registry because it is the one part that turns a reference into files; the registry asks it
for a run's model when it registers one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ModelciError
from .mlflow_base import MlflowBase
from .mlflow_rest import LoggedModel, Run
from .mlflow_uris import (
    MLMODEL_FILE,
    LoggedModelUri,
    ModelReference,
    RegisteredAliasUri,
    RegisteredVersionUri,
    RunArtifactUri,
    StorageUri,
    map_artifact_uri,
    parse_model_uri,
)

_MAX_RESOLVE_DEPTH = 4  # models:/name@alias -> models:/m-id -> storage: two hops in practice


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


class ModelsMixin(MlflowBase):
    """Logged models, their MLmodel files, and a model URI's storage location."""

    get_run: Callable[[str], Run]  # RunsMixin's, composed with this one in `Tracker`

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

    def _logged_model(self, model_id: str) -> LoggedModel:
        return self._call(f"read logged model {model_id}", self._client.get_logged_model, model_id)

    # -- the MLmodel file ---------------------------------------------------------------------

    def model_document(self, model_uri: str) -> dict[str, Any]:
        """The model's MLmodel file, parsed as plain YAML ({} when it is not a mapping): its
        signature, flavors, saved input example.

        Plain YAML because loading it with MLflow's `Model` class needs numpy, which the
        client-only `mlflow-skinny` that modelci runs with does not have."""
        from ruamel.yaml import YAML

        location = self._artifact_location(parse_model_uri(model_uri), depth=0)
        text = self._read_artifact(
            f"{location.rstrip('/')}/{MLMODEL_FILE}", f"read the MLmodel file of {model_uri}"
        )
        document = YAML(typ="safe").load(text.decode("utf-8"))
        return document if isinstance(document, dict) else {}

    def model_flavors(self, model_uri: str) -> list[str]:
        """The flavors in a logged model's MLmodel file (downloads that one file)."""
        flavors = self.model_document(model_uri).get("flavors")
        return sorted(flavors) if isinstance(flavors, dict) else []

    # -- where the files are ------------------------------------------------------------------

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

    def _run_artifact_location(self, run_id: str, path: str) -> str:
        # MLflow 3 resolves runs:/<id>/<name> to the run's LoggedModel of that name, whose
        # files live outside the run's artifact directory.
        for model in self.logged_models(run_id):
            if model.name == path:
                return model.artifact_location
        artifact_root = self.get_run(run_id).info.artifact_uri
        return f"{artifact_root.rstrip('/')}/{path}"
