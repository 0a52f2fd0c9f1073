"""The MLflow adapter: the only way modelci talks to MLflow, and modelci's tags on runs.

`Tracker` is composed as python-gitlab composes its managers: `mlflow_base.MlflowBase` holds
the connection (the REST client of `mlflow_rest`: `import mlflow` costs over a second) and
turns every failure into a `ModelciError` that names the server and what to check; the
mixins `mlflow_runs.RunsMixin`, `mlflow_models.ModelsMixin` and
`mlflow_registry.RegistryMixin` each hold one kind of operation. This module keeps what is
modelci's own: the tags its jobs put on runs, and the search that reads them to choose the
run an environment serves. The pure model URI helpers of `mlflow_uris` and the result types
are re-exported, so callers import everything MLflow from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ModelciError
from .mlflow_base import filter_literal
from .mlflow_models import LoggedModelInfo, ModelsMixin
from .mlflow_registry import ModelVersionInfo, RegistryMixin
from .mlflow_rest import Run
from .mlflow_runs import RunsMixin
from .mlflow_uris import (
    LoggedModelUri,
    RegisteredAliasUri,
    RegisteredVersionUri,
    RunArtifactUri,
    StorageUri,
    map_artifact_uri,
    parse_model_uri,
    require_model_dir,
)

if TYPE_CHECKING:
    from ..config.settings import Pipeline
    from ..lifecycle.gate import GateResult

__all__ = [  # re-exported: callers import every MLflow name from this module
    "LoggedModelInfo",
    "LoggedModelUri",
    "ModelVersionInfo",
    "RegisteredAliasUri",
    "RegisteredVersionUri",
    "RunArtifactUri",
    "StorageUri",
    "map_artifact_uri",
    "parse_model_uri",
    "require_model_dir",
]

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

_MAX_TAG_VALUE = 5000  # MLflow rejects longer tag values on some backends


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


class Tracker(RunsMixin, ModelsMixin, RegistryMixin):
    """MLflow as modelci's jobs use it: runs, logged models and the registry (the mixins),
    and the choice of the run an environment serves, which reads modelci's tags."""

    def find_run(self, experiment: str, environment: str, branch: str) -> Run:
        """The run `environment` serves: pinned by hand, else the newest that passed the gate."""
        experiment_id = self.find_experiment(experiment)
        pinned = f"tags.`{PIN_TAG}` = {filter_literal(environment)}"
        passed = (
            f"tags.`{TAG_BRANCH}` = {filter_literal(branch)} "
            f"and tags.`{TAG_ENVIRONMENT}` = {filter_literal(environment)} "
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
