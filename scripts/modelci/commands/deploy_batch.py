"""`modelci deploy-batch`: upload the model repo's code at this commit to S3, render one Airflow
DAG file per batch DAG and commit them all to the DAG bundle repo in one commit."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..workspace import (
    Job,
    add_config_arguments,
    commit_message,
    dag_repo,
    load_job,
    read_resolved_state,
    write_state,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..plan import code_uri, dag_files, owned_dag_paths

    job = load_job(args)
    models = [m for m in job.models(args.model) if m.batch.dags]
    if not models:
        print(f"no batch DAGs in {job.config.path}: nothing to deploy")
        return 0
    resolved = {m.name: read_resolved_state(m.name) for m in models}
    files = dag_files(job, models, code=upload_code(job, code_uri(job)), resolved=resolved)
    repo = dag_repo(job.settings)
    owned = owned_dag_paths(job, models)
    environment = job.dirs.environment
    result = repo.apply(
        [job.dirs.dag_dir],
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


def upload_code(job: Job, uri: str) -> str:
    """The repo's files at this commit as tar.gz in S3; content-addressed, so uploaded once."""
    from ..gitrepo import archive_commit
    from ..s3 import S3Store

    store = S3Store(job.settings.s3_endpoint, job.settings.s3_region)
    if not store.exists(uri):
        repo_root = Path(job.config.path).resolve().parent
        store.put_bytes(uri, archive_commit(repo_root, job.pipeline.commit))
    print(f"code of {job.pipeline.commit[:12]} at {uri}")
    return uri
