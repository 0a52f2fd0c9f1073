"""`modelci train`: create the MLflow run with provenance tags, then run the training entrypoint
so that a plain `mlflow.start_run()` in it attaches to that run."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..config import Model
from ..errors import ModelciError
from ..workspace import Job, add_config_arguments, load_job, write_state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..tracking import Tracker

    job = load_job(args)
    tracker = Tracker(job.settings.tracking_uri)
    for model in job.models(args.model):
        _train(job, tracker, model)
    return 0


def _train(job: Job, tracker, model: Model) -> None:
    from ..tracking import provenance_tags

    names = job.names(model)
    tags = provenance_tags(job.pipeline, names.environment, model.name)
    run_id = tracker.start_run(
        names.experiment, tags, run_name=f"{names.environment}-{job.pipeline.pipeline_id}"
    )
    experiment_id = tracker.get_run(run_id).info.experiment_id
    write_state(
        model.name,
        "train",
        run_id=run_id,
        experiment_id=experiment_id,
        environment=names.environment,
    )
    print(f"{model.name}: MLflow run {run_id} in experiment '{names.experiment}'", flush=True)

    code = _run_entrypoint(job, model, run_id, experiment_id, names.environment)
    if code != 0:
        tracker.end_run(run_id, "FAILED")
        raise ModelciError(
            f"{model.train.entrypoint} exited with code {code}; run {run_id} is marked FAILED "
            "(its output is above)"
        )
    try:
        tracker.model_uri_for_run(run_id)  # the same lookup `resolve` makes later
    except ModelciError:
        tracker.end_run(run_id, "FAILED")
        raise ModelciError(
            f"{model.train.entrypoint} logged no model to run {run_id}; log one inside "
            f"`with mlflow.start_run():`, e.g. mlflow.{model.flavor}.log_model(model, name='model')"
        ) from None
    if tracker.get_run(run_id).info.status == "RUNNING":
        tracker.end_run(run_id, "FINISHED")


def _run_entrypoint(
    job: Job, model: Model, run_id: str, experiment_id: str, environment: str
) -> int:
    repo_root = Path(job.config.path).resolve().parent
    env = dict(os.environ)
    env.update(
        MLFLOW_TRACKING_URI=job.settings.tracking_uri,
        MLFLOW_EXPERIMENT_ID=experiment_id,
        MLFLOW_RUN_ID=run_id,
        MODELCI_MODEL=model.name,
        MODELCI_ENVIRONMENT=environment,
    )
    env.pop("MLFLOW_EXPERIMENT_NAME", None)  # the id above wins; a stale name would conflict
    python = shutil.which("python", path=env.get("PATH")) or sys.executable
    command = [python, model.train.entrypoint, *model.train.args]
    return subprocess.run(command, cwd=repo_root, env=env, check=False).returncode
