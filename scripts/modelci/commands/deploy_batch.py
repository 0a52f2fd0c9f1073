"""`modelci deploy-batch`: upload the model repo's code at this commit to S3, render one Airflow
DAG file per batch DAG and commit them all to the DAG bundle repo in one commit."""

from __future__ import annotations

import argparse

from ..workspace import (
    Job,
    add_config_arguments,
    load_job,
    read_resolved_state,
    write_state,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..deploy import record_archives, write_dags
    from ..plan import code_uri

    job = load_job(args)
    models = [m for m in job.models(args.model) if m.batch.dags]
    if not models:
        print(f"no batch DAGs in {job.config.path}: nothing to deploy")
        return 0
    resolved = {m.name: read_resolved_state(m.name) for m in models}
    code = upload_code(job, code_uri(job))
    write_dags(job, models, resolved, {m.name: code for m in models})
    record_archives(job, "batch", resolved.values())
    for model in models:
        write_state(
            model.name,
            "deploy-batch",
            dags={d.kind: job.names(model).dag_id(d.kind) for d in model.batch.dags},
        )
    return 0


def upload_code(job: Job, uri: str) -> str:
    """The repo's files at this commit as tar.gz in S3; content-addressed, so uploaded once."""
    from ..deploy import put_code_archive
    from ..s3 import S3Store

    store = S3Store(job.settings.s3_endpoint, job.settings.s3_region)
    put_code_archive(job, store, uri, job.pipeline.commit)
    print(f"code of {job.pipeline.commit[:12]} at {uri}")
    return uri
