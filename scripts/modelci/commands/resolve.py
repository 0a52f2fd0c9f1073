"""`modelci resolve`: pick the run this environment serves from MLflow run tags (a run pinned by
hand with `modelci.pin`, else the newest run of the branch that passed the gate) and resolve it
to the s3:// directory holding `MLmodel`, which is what KServe and batch pods can read.

It also does the S3 writes the deploys need, so that they only write git: the repository's
code at this commit for the batch pods (when batch DAGs are deployed), and the environment's
record of the archives its pods run in.

Before any write it refuses what no deploy could run: a Spark ML model (its MLmodel's spark
flavor) that online serving or an inference DAG would load, and a Spark training DAG for a run
that records no environment archive (`spark.py`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..lifecycle.workspace import Job, ResolvedModel, add_config_arguments, load_job, write_state

if TYPE_CHECKING:  # imported when used: a job imports only what it runs
    from ..config.types import Model
    from ..systems.s3 import S3Store
    from ..systems.tracking import Tracker

# The component's `batch` input, as the pipeline's jobs see it: "false" deploys no batch DAGs.
BATCH_VARIABLE = "MODELCI_BATCH"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..render.spark import require_environment
    from ..systems.s3 import S3Store
    from ..systems.tracking import Tracker

    job = load_job(args)
    tracker = Tracker(job.settings.tracking_uri)
    store = S3Store(job.settings.s3_endpoint, job.settings.s3_region)
    models = job.models(args.model)
    chosen = {model.name: resolve_model(job, tracker, store, model) for model in models}
    batch = [m for m in models if m.batch.dags] if deploys_batch() else []
    for model in batch:  # refused here, before anything is staged, not at deploy-batch
        require_environment(model, chosen[model.name].environment_uri)
    if batch:
        code = stage_code(job, store, batch)
        chosen.update({m.name: replace(chosen[m.name], code_uri=code) for m in batch})
    record_environment_archives(job, store, chosen.values())
    for model in models:
        resolved = chosen[model.name]
        environment = job.names(model).environment
        write_state(model.name, "resolve", environment=environment, **resolved.as_state())
        print(
            f"{model.name}: run {resolved.run_id} -> {resolved.model_uri} -> "
            f"{resolved.storage_uri}",
            flush=True,
        )
    return 0


def resolve_model(job: Job, tracker: Tracker, store: S3Store, model: Model) -> ResolvedModel:
    from ..lifecycle.modelenv import checked_environment
    from ..render.spark import refuse_spark_model
    from ..systems.tracking import require_model_dir

    names = job.names(model)
    run = tracker.find_run(names.experiment, names.environment, job.pipeline.branch)
    model_uri = tracker.model_uri_for_run(run.info.run_id, experiment_id=run.info.experiment_id)
    storage_uri = require_model_dir(
        store, tracker.resolve_storage_uri(model_uri, job.settings.artifacts_destination)
    )
    # The first read of the model's MLmodel a deploy makes: a run pinned by hand or trained by
    # a training DAG never met the train job's flavor check.
    refuse_spark_model(store, model, storage_uri)
    return ResolvedModel(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        model_uri=model_uri,
        storage_uri=storage_uri,
        environment_uri=checked_environment(store, run.data.tags, storage_uri, model.name),
    )


def deploys_batch() -> bool:
    return os.environ.get(BATCH_VARIABLE, "true").strip().lower() != "false"


def stage_code(job: Job, store: S3Store, models: Sequence[Model]) -> str:
    """The repo's files at this commit as tar.gz in S3, where the batch pods of `models` fetch
    them (content-addressed, so uploaded once), and a Spark model's main file beside it."""
    from ..lifecycle.deploy import put_code_archive, put_spark_main_files
    from ..render.plan import code_uri

    uri = code_uri(job)
    put_code_archive(job, store, uri, job.pipeline.commit)
    print(f"code of {job.pipeline.commit[:12]} at {uri}")
    put_spark_main_files(store, models, {model.name: uri for model in models})
    return uri


def record_environment_archives(
    job: Job, store: S3Store, resolved: Iterable[ResolvedModel]
) -> None:
    """Add the archives the resolved runs trained in to the environment's record."""
    from ..lifecycle.modelenv import ARCHIVES_RECORD, record_archives
    from ..render.plan import scratch_prefix

    if not job.settings.scratch_uri:
        return  # archives are kept only under the scratch URI: there are none to record
    archives = [r.environment_uri for r in resolved if r.environment_uri]
    record_archives(store, f"{scratch_prefix(job)}{ARCHIVES_RECORD}", archives)
