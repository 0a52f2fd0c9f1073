"""`modelci resolve`: pick the run this environment serves from MLflow run tags (a run pinned by
hand with `modelci.pin`, else the newest run of the branch that passed the gate) and resolve it
to the s3:// directory holding `MLmodel`, which is what KServe and batch pods can read."""

from __future__ import annotations

import argparse

from ..workspace import ResolvedModel, add_config_arguments, load_job, write_state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..modelenv import checked_environment
    from ..s3 import S3Store
    from ..tracking import Tracker, require_model_dir

    job = load_job(args)
    tracker = Tracker(job.settings.tracking_uri)
    store = S3Store(job.settings.s3_endpoint, job.settings.s3_region)
    for model in job.models(args.model):
        names = job.names(model)
        run = tracker.find_run(names.experiment, names.environment, job.pipeline.branch)
        model_uri = tracker.model_uri_for_run(run.info.run_id)
        storage_uri = require_model_dir(
            store, tracker.resolve_storage_uri(model_uri, job.settings.artifacts_destination)
        )
        chosen = ResolvedModel(
            run_id=run.info.run_id,
            experiment_id=run.info.experiment_id,
            model_uri=model_uri,
            storage_uri=storage_uri,
            environment_uri=checked_environment(store, run.data.tags, storage_uri, model.name),
        )
        write_state(model.name, "resolve", environment=names.environment, **chosen.as_state())
        print(f"{model.name}: run {run.info.run_id} -> {model_uri} -> {storage_uri}", flush=True)
    return 0
