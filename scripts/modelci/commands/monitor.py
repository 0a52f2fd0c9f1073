"""`modelci monitor`: what the product's monitoring DAG runs in its pod (the model
repository's code at the deployed commit is the working directory).

It reads the environment's current data (`monitoring.data` under MODELCI_DATA_URI) and the
reference the served run logged (`monitoring.reference`), runs the checks of
`monitoring.py`, and logs one FINISHED run per check to the `<experiment>/monitoring` MLflow
experiment, tagged with the served run. On the last stand, a failed check triggers a
retraining pipeline of the default branch (GitLab's trigger API), unless one is in flight
or in its cool-down; the decision and its reason are tags of the same run. Exit status 1
when a check failed or the data could not be checked, so the DAG run shows it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from ..config import Config, Model, Monitoring, load_config
from ..errors import ModelciError
from ..macros import expand, values_from_env
from ..monitoring import (
    TRIGGER,
    DataProblem,
    Decision,
    LastTrigger,
    MonitorResult,
    decide_retraining,
    evaluate,
    read_table,
)
from ..retraining import (
    MODEL_VARIABLE,
    TAG_DECISION,
    TAG_KIND,
    TAG_MONITOR,
    TAG_MONITOR_FAILURES,
    TAG_MONITORS_RUN,
    TAG_OUTCOME,
    TAG_PIPELINE,
    TAG_REASON,
    TRIGGER_FAILED,
    TRIGGER_VARIABLE,
    TRIGGERED,
    monitoring_experiment,
)

TRIGGER_TOKEN_VARIABLE = "MODELCI_TRIGGER_TOKEN"  # from the platform's trigger Secret


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="mlops.yaml", help="the model config file")
    parser.add_argument("--model", required=True, help="the model whose monitoring to run")
    parser.add_argument(
        "--stand", help="the stand this DAG watches (its last stand may trigger retraining)"
    )


def run(args: argparse.Namespace) -> int:
    from ..s3 import S3Store
    from ..tracking import TAG_ENVIRONMENT, TAG_MODEL, TAG_PROJECT, Tracker

    env = os.environ
    config = load_config(Path(args.config))
    model = _model(config, args.model)
    spec = model.monitoring
    assert spec is not None
    project, served_run = _required(env, "MODELCI_PROJECT"), _required(env, "MLFLOW_RUN_ID")
    environment = _required(env, "MODELCI_ENVIRONMENT")
    tracker = Tracker(_required(env, "MLFLOW_TRACKING_URI"))
    experiment = monitoring_experiment(_required(env, "MODELCI_EXPERIMENT"))
    last = _last_trigger(tracker, experiment, environment)

    store = S3Store.from_env(env)
    current_uri = _data_uri(env, spec)
    try:
        current = read_table(_read(store, current_uri), current_uri)
        reference_source = f"artifact {spec.reference} of run {served_run}"
        reference = read_table(_reference(tracker, served_run, spec.reference), reference_source)
        result: MonitorResult | None = evaluate(
            spec, reference, current, sources=(reference_source, current_uri)
        )
        problem = ""
    except DataProblem as error:
        result, problem = None, str(error)
    production = args.stand is not None and args.stand == config.stands[-1].name
    now = datetime.now(UTC)
    decision = decide_retraining(
        result, spec.retrain, production_stand=production, last=last, now=now
    )
    _print_result(environment, model.name, current_uri, result, problem, decision)

    tags = {
        TAG_KIND: "monitoring",
        TAG_PROJECT: project,
        TAG_ENVIRONMENT: environment,
        TAG_MODEL: model.name,
        TAG_MONITORS_RUN: served_run,
        TAG_MONITOR: _verdict(result),
        TAG_REASON: decision.reason,
    }
    if result is None or not result.passed:
        failures = [problem] if result is None else [c.message for c in result.failures]
        tags[TAG_MONITOR_FAILURES] = "; ".join(failures)[:4000]
    metrics = result.metrics if result is not None else {}
    tags[TAG_DECISION] = "triggering" if decision.action == TRIGGER else decision.action
    run_name = f"monitoring-{environment}-{now:%Y%m%dT%H%M%S}"
    run_id = tracker.log_finished_run(experiment, tags, metrics, run_name)
    print(f"logged to MLflow: run {run_id} in experiment '{experiment}'", flush=True)
    if decision.action == TRIGGER:
        _trigger(tracker, env, run_id, project, model.name)
    return 0 if result is not None and result.passed else 1


def _model(config: Config, name: str) -> Model:
    try:
        model = config.model(name)
    except KeyError:
        known = ", ".join(m.name for m in config.models)
        raise ModelciError(f"{config.path} has no model {name!r} (its models: {known})") from None
    if model.monitoring is None:
        raise ModelciError(
            f"{config.path}: model {name!r} has no monitoring: section, so there is nothing to "
            "check. Add one (README, 'Monitoring and retraining')"
        )
    return model


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ModelciError(
            f"{name} is not set: `modelci monitor` runs in the pod of the monitoring DAG that "
            "modelci generates, which sets it"
        )
    return value


def _data_uri(env: Mapping[str, str], spec: Monitoring) -> str:
    prefix = _required(env, "MODELCI_DATA_URI")
    return prefix.rstrip("/") + "/" + expand(spec.data, values_from_env(env))


def _read(store, uri: str) -> bytes:
    try:
        return store.get_bytes(uri)
    except ModelciError as error:
        raise DataProblem(f"the monitoring data could not be read: {error}") from None


def _reference(tracker, run_id: str, path: str) -> bytes:
    try:
        return tracker.download_artifact(run_id, path)
    except ModelciError as error:
        raise DataProblem(
            f"the reference {path} of the served run {run_id} could not be read ({error}); "
            f"log it in the training script: mlflow.log_artifact('{path}')"
        ) from None


def _last_trigger(tracker, experiment: str, environment: str) -> LastTrigger | None:
    from ..tracking import TAG_ENVIRONMENT

    found = tracker.newest_run(experiment, {TAG_ENVIRONMENT: environment, TAG_DECISION: TRIGGERED})
    if found is None:
        return None
    return LastTrigger(
        at=datetime.fromtimestamp(found.info.start_time / 1000, UTC),
        outcome=found.data.tags.get(TAG_OUTCOME, ""),
        pipeline=found.data.tags.get(TAG_PIPELINE, "?"),
    )


def _verdict(result: MonitorResult | None) -> str:
    if result is None:
        return "no-data"
    return "passed" if result.passed else "failed"


def _print_result(
    environment: str,
    model: str,
    data: str,
    result: MonitorResult | None,
    problem: str,
    decision: Decision,
) -> None:
    print(f"monitoring {model} in {environment} on {data}:")
    if result is None:
        print(f"  FAILED  data: {problem}")
    else:
        for check in result.checks:
            print(f"  {'ok    ' if check.passed else 'FAILED'}  {check.message}")
    print(f"retraining: {decision.action} ({decision.reason})", flush=True)


def _trigger(tracker, env: Mapping[str, str], run_id: str, project: str, model: str) -> None:
    """Start the retraining pipeline; a failure is recorded (and the run retried next time)."""
    from ..gitlab_api import trigger_pipeline

    url, token = env.get("MODELCI_GITLAB_URL", ""), env.get(TRIGGER_TOKEN_VARIABLE, "")
    ref = env.get("MODELCI_RETRAIN_REF", "").strip() or "main"
    try:
        if not url or not token:
            missing = " and ".join(
                name
                for name, value in (("MODELCI_GITLAB_URL", url), (TRIGGER_TOKEN_VARIABLE, token))
                if not value
            )
            raise ModelciError(
                f"{missing} is not set in the pod: create the platform's trigger Secret "
                "(README, 'Monitoring and retraining')"
            )
        variables = {MODEL_VARIABLE: model, TRIGGER_VARIABLE: run_id}
        pipeline = trigger_pipeline(url, token, project, ref, variables)
    except ModelciError as error:
        tracker.set_tags(run_id, {TAG_DECISION: TRIGGER_FAILED, TAG_REASON: str(error)[:4000]})
        print(f"retraining NOT triggered: {error}", flush=True)
        return
    where = pipeline.web_url or pipeline.id
    tracker.set_tags(run_id, {TAG_DECISION: TRIGGERED, TAG_PIPELINE: where})
    print(f"retraining triggered: pipeline {where} of {project} on {ref}", flush=True)
