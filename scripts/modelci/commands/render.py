"""`modelci render`: a dry run. Prints every file a pipeline would write (DAG code, Helm values,
the Argo CD generator file) with its path, touching no remote. Run facts that only a real
pipeline knows (run id, model location) are shown as placeholders unless given."""

from __future__ import annotations

import argparse

from ..workspace import add_config_arguments, load_job
from .deploy_batch import code_uri_for, render_files
from .deploy_online import checked_values

PLACEHOLDER_RUN = "<run id chosen by resolve>"
PLACEHOLDER_STORAGE = "s3://placeholder-bucket/resolved-by-the-pipeline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--run-id", default=PLACEHOLDER_RUN, help="the MLflow run to show")
    parser.add_argument(
        "--storage-uri", default=PLACEHOLDER_STORAGE, help="the s3:// model directory to show"
    )


def run(args: argparse.Namespace) -> int:
    from ..values import app_config_text, update_values_text, values_header

    job = load_job(args)
    models = job.models(args.model)
    states = {m.name: {"run_id": args.run_id, "storage_uri": args.storage_uri} for m in models}
    files: dict[str, str] = {}
    batch = [m for m in models if m.batch.dags]
    if batch:
        code_uri = code_uri_for(job, job.names(batch[0]).s3_prefix)
        rendered = render_files(job, batch, code_uri=code_uri, states=states)
        files.update({path: data.decode("utf-8") for path, data in rendered.items()})
    for model in models:
        if model.online.enabled:
            names = job.names(model)
            values = checked_values(job, model, states[model.name])
            header = values_header(job.pipeline, names)
            files[names.values_path] = update_values_text(None, values, header)
            files[names.app_config_path] = app_config_text(names)
    for path, text in sorted(files.items()):
        print(f"==> {path} <==\n{text}")
    return 0
