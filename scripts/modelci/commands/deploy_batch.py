"""`modelci deploy-batch`: render one Airflow DAG file per batch DAG and commit them all to the
DAG bundle repo in one commit. The code the DAGs' pods fetch was staged in S3 by resolve."""

from __future__ import annotations

import argparse

from ..errors import ModelciError
from ..lifecycle.workspace import (
    ResolvedModel,
    add_config_arguments,
    load_job,
    read_resolved_state,
    write_state,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..lifecycle.deploy import write_dags

    job = load_job(args)
    models = [m for m in job.models(args.model) if m.batch.dags]
    if not models:
        print(f"no batch DAGs in {job.config.path}: nothing to deploy")
        return 0
    resolved = {m.name: read_resolved_state(m.name) for m in models}
    code = {name: staged_code(name, chosen) for name, chosen in resolved.items()}
    write_dags(job, models, resolved, code)
    for model in models:
        write_state(
            model.name,
            "deploy-batch",
            dags={d.kind: job.names(model).dag_id(d.kind) for d in model.batch.dags},
        )
    return 0


def staged_code(model: str, resolved: ResolvedModel) -> str:
    if not resolved.code_uri:
        raise ModelciError(
            f"{model}: the resolve job staged no code for the batch pods (it does unless "
            "MODELCI_BATCH is false, the component's `batch` input); nothing was written. Run "
            "the pipeline with `batch: true` in both jobs, or run `modelci resolve` again"
        )
    return resolved.code_uri
