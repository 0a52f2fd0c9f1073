"""MLflow runs and experiments: `RunsMixin`, one part of `tracking.Tracker`.

What a job does with a run: start and end it, tag it, read its metrics and dataset inputs,
find the newest run carrying some tags, and store or fetch one artifact file of it. Apart
from the logged models and the registry because a run is what every job has first; those
parts read runs through the methods here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ModelciError
from .mlflow_base import MlflowBase, filter_literal
from .mlflow_rest import Run

RUN_END_STATUSES = ("FINISHED", "FAILED", "KILLED")


class RunsMixin(MlflowBase):
    """Runs, the experiments that hold them, and a run's artifact files."""

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

    # -- searching ----------------------------------------------------------------------------

    def newest_run(self, experiment: str, tags: Mapping[str, str]) -> Run | None:
        """The newest run of `experiment` carrying every tag of `tags`; None if there is none."""
        experiment_id = self.find_experiment(experiment)
        if experiment_id is None:
            return None
        search = " and ".join(f"tags.`{k}` = {filter_literal(v)}" for k, v in tags.items())
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

    # -- experiments --------------------------------------------------------------------------

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

    # -- a run's artifact files ---------------------------------------------------------------

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
