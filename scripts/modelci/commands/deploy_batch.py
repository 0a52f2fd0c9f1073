"""`modelci deploy-batch`: upload the model repo's code at this commit to S3, render one Airflow
DAG file per batch DAG and commit them all to the DAG bundle repo in one commit."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import DAG_KINDS
from ..errors import ModelciError, strip_userinfo
from ..workspace import (
    Job,
    add_config_arguments,
    commit_message,
    load_job,
    read_resolved_state,
    shared_repo,
    write_state,
)

TOKEN_VARIABLE = "MODELCI_DAG_REPO_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    job = load_job(args)
    models = [m for m in job.models(args.model) if m.batch.dags]
    if not models:
        print(f"no batch DAGs in {job.config.path}: nothing to deploy")
        return 0
    states = {m.name: read_resolved_state(m.name) for m in models}
    files = render_files(job, models, code_uri=upload_code(job, models), states=states)
    repo = shared_repo(
        job.settings.dag_repo_url,
        job.settings.dag_repo_branch,
        what="DAG bundle",
        token_variable=TOKEN_VARIABLE,
    )
    owned = [job.names(m).dag_path(kind) for m in models for kind in DAG_KINDS]
    environment = job.names(models[0]).environment
    scope = sorted({str(Path(path).parent) for path in owned})
    result = repo.apply(
        scope,
        lambda _read: _changes(owned, files),
        commit_message(f"modelci: deploy DAGs of {environment}", job.pipeline, environment),
    )
    for model in models:
        write_state(
            model.name,
            "deploy-batch",
            dags={d.kind: job.names(model).dag_id(d.kind) for d in model.batch.dags},
        )
    verb = f"committed {result.sha[:12]}" if result.sha else "already up to date, no commit"
    print(f"{repo.display_url}: {len(files)} DAG file(s) {verb}")
    for path in sorted(files):
        print(f"  {path}")
    return 0


def _changes(owned: list[str], files: dict[str, bytes]):
    from ..gitrepo import Changes

    # Every DAG file a model may own is removed first, so a DAG dropped from mlops.yaml goes.
    return Changes(writes=files, removes=[p for p in owned if p not in files])


def render_files(job: Job, models, *, code_uri: str, states: dict[str, dict]) -> dict[str, bytes]:
    from ..dags import render_dag

    image = job.config.image or job.settings.runtime_image
    if not image:
        raise ModelciError(
            f"no image for batch pods: set `image:` in {job.config.path} or the platform's "
            "MODELCI_RUNTIME_IMAGE CI/CD variable"
        )
    files = {}
    for model in models:
        names, state = job.names(model), states[model.name]
        for dag in model.batch.dags:
            source = render_dag(
                names=names,
                model=model,
                dag=dag,
                pipeline=job.pipeline,
                image=image,
                model_uri=state["storage_uri"],
                run_id=state["run_id"],
                code_uri=code_uri,
                s3_secret=job.settings.cluster_s3_secret,
                s3_endpoint=job.settings.cluster_s3_endpoint,
                tracking_uri=strip_userinfo(job.settings.tracking_uri),
            )
            files[names.dag_path(dag.kind)] = source.encode("utf-8")
    return files


def code_uri_for(job: Job, environment_prefix: str) -> str:
    if not job.settings.scratch_uri:
        raise ModelciError(
            "MODELCI_SCRATCH_URI is not set: batch pods fetch the model repo's code from there "
            "(an s3://bucket/prefix the pods can read); set it in the group's CI/CD variables"
        )
    base = job.settings.scratch_uri.rstrip("/")
    return f"{base}/{environment_prefix}code/{job.pipeline.commit}.tar.gz"


def upload_code(job: Job, models) -> str:
    """The repo's files at this commit as tar.gz in S3; content-addressed, so uploaded once."""
    from ..gitrepo import archive_commit
    from ..s3 import S3Store

    uri = code_uri_for(job, job.names(models[0]).s3_prefix)
    store = S3Store(job.settings.s3_endpoint, job.settings.s3_region)
    if not store.exists(uri):
        repo_root = Path(job.config.path).resolve().parent
        store.put_bytes(uri, archive_commit(repo_root, job.pipeline.commit))
    print(f"code of {job.pipeline.commit[:12]} at {uri}")
    return uri
