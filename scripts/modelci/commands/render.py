"""`modelci render`: a dry run. Prints every file a pipeline would write (DAG code, Helm values,
the Argo CD generator file) with its path, touching no remote. Run facts that only a real
pipeline knows (run id, model location) are shown as placeholders unless given, and so is the
environment archive a Spark DAG's SparkApplication runs in (training or scoring).

Outside GitLab CI it works on a laptop as it is: the project, branch and commit come from the
git checkout (or `--project` / `--branch`), and platform settings not set locally are shown as
placeholders."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from ..config.mlops import load_config
from ..config.settings import Pipeline, Settings
from ..config.types import Model
from ..lifecycle.workspace import Job, ResolvedModel, add_config_arguments
from ..render.spark import runs_on_spark

PLACEHOLDER_RUN = "<run id chosen by resolve>"
PLACEHOLDER_STORAGE = "s3://placeholder-bucket/resolved-by-the-pipeline"
PLACEHOLDER_IMAGE = "<MODELCI_RUNTIME_IMAGE>"
# The environment archive of the run resolve chooses: a Spark training DAG's Python. Written as
# an s3:// URI of the form the chart accepts, so the values of the same model render too.
PLACEHOLDER_ENVIRONMENT = (
    "s3://placeholder-bucket/environment-archive-of-the-run-chosen-by-resolve/environment.tar.gz"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--run-id", default=PLACEHOLDER_RUN, help="the MLflow run to show")
    parser.add_argument(
        "--storage-uri", default=PLACEHOLDER_STORAGE, help="the s3:// model directory to show"
    )
    parser.add_argument(
        "--project", help="GitLab project path (default: CI_PROJECT_PATH, else git's origin)"
    )
    parser.add_argument(
        "--branch", help="branch to render for (default: CI_COMMIT_REF_NAME, else git's branch)"
    )


def dry_run_job(args: argparse.Namespace, env: dict[str, str]) -> Job:
    config = load_config(Path(args.config))
    pipeline = Pipeline.for_dry_run(
        env, Path(args.config).resolve().parent, project=args.project, branch=args.branch
    )
    settings = Settings.from_env(env)
    if not (config.image or settings.runtime_image):
        settings = Settings.from_env({**env, "MODELCI_RUNTIME_IMAGE": PLACEHOLDER_IMAGE})
    return Job(config=config, pipeline=pipeline, settings=settings, stand=None)


def run(args: argparse.Namespace) -> int:
    from ..render.plan import checked_values, code_uri, dag_files, gitops_files

    job = dry_run_job(args, dict(os.environ))
    models = job.models(args.model)
    chosen = ResolvedModel(
        run_id=args.run_id, experiment_id="", model_uri="", storage_uri=args.storage_uri
    )
    resolved = {model.name: shown_choice(model, chosen) for model in models}
    files: dict[str, bytes] = {}
    batch = [m for m in models if m.batch.dags]
    if batch:
        code = {model.name: code_uri(job, dry_run=True) for model in batch}
        files |= dag_files(job, batch, code=code, resolved=resolved, dry_run=True)
    for model in models:
        if model.online.enabled:
            values = checked_values(job, model, resolved[model.name])
            files |= gitops_files(job, model, values, existing_values=None)
    for path, data in sorted(files.items()):
        print(f"==> {path} <==\n{data.decode('utf-8')}")
    return 0


def shown_choice(model: Model, chosen: ResolvedModel) -> ResolvedModel:
    """What the dry run shows as resolved for `model`: a Spark DAG cannot be written
    without the environment archive of the run, which only resolve knows, so it shows a
    placeholder in its place (a real deploy without one is refused)."""
    if not runs_on_spark(model) or chosen.environment_uri:
        return chosen
    return replace(chosen, environment_uri=PLACEHOLDER_ENVIRONMENT)
