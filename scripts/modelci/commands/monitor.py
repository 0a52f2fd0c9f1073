"""`modelci monitor`: what the product's monitoring DAG runs in its pod (the model
repository's code at the deployed commit is the working directory).

It reads the environment's current data (`monitoring.data` under MODELCI_DATA_URI) and the
reference the served run logged (`monitoring.reference`), runs the checks of
`monitoring.py`, and logs one FINISHED run per check to the `<experiment>/monitoring` MLflow
experiment, tagged with the served run. On the last stand, a failed check triggers a
retraining pipeline of the default branch (GitLab's trigger API), unless one is in flight
or in its cool-down; the decision and its reason are tags of the same run. One drift event
starts at most one pipeline, whatever GitLab answers and however many checks run at once
(`retraining.py`). Exit status 1 when a check failed or the data could not be checked, so
the DAG run shows it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.macros import expand, values_from_env
from ..config.mlops import load_config
from ..config.types import Config, Model, Monitoring
from ..errors import ModelciError
from ..lifecycle.retraining import (
    MODEL_VARIABLE,
    TAG_DECISION,
    TAG_EVENT,
    TAG_KIND,
    TAG_MONITOR,
    TAG_MONITOR_DAY,
    TAG_MONITOR_FAILURES,
    TAG_MONITORS_RUN,
    TAG_OUTCOME,
    TAG_OWNER,
    TAG_PIPELINE,
    TAG_REASON,
    TAG_TRIGGER_ERROR,
    TRIGGER_FAILED,
    TRIGGER_UNKNOWN,
    TRIGGER_VARIABLE,
    TRIGGERED,
    TRIGGERING,
    Claim,
    EventClaims,
    GitLabAccess,
    event_id,
    monitoring_experiment,
    pending_trigger,
)
from ..monitoring.checks import (
    SKIP,
    TRIGGER,
    DataProblem,
    Decision,
    LastTrigger,
    MonitorResult,
    decide_retraining,
    evaluate,
)

if TYPE_CHECKING:
    from ..systems.tracking import Tracker

PICTURE = "monitoring.svg"  # the artifact of each monitoring run: what the check saw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="mlops.yaml", help="the model config file")
    parser.add_argument("--model", required=True, help="the model whose monitoring to run")
    parser.add_argument(
        "--stand", help="the stand this DAG watches (its last stand may trigger retraining)"
    )


def run(args: argparse.Namespace) -> int:
    from ..systems.s3 import S3Store
    from ..systems.tracking import TAG_ENVIRONMENT, TAG_MODEL, TAG_PROJECT, Tracker

    env = os.environ
    config = load_config(Path(args.config))
    model = _model(config, args.model)
    spec = model.monitoring
    assert spec is not None
    project, served_run = _required(env, "MODELCI_PROJECT"), _required(env, "MLFLOW_RUN_ID")
    environment = _required(env, "MODELCI_ENVIRONMENT")
    tracker = Tracker(_required(env, "MLFLOW_TRACKING_URI"))
    experiment = monitoring_experiment(_required(env, "MODELCI_EXPERIMENT"))
    retraining = _Retraining.from_env(env, tracker, model.name)
    newest, last = _last_trigger(retraining, experiment)

    store = S3Store.from_env(env)
    current_uri = _data_uri(env, spec)
    result, problem = _check(store, tracker, spec, served_run, current_uri)
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
    day = values_from_env(env)["ds"]
    if day:
        tags[TAG_MONITOR_DAY] = day
    if result is None or not result.passed:
        failures = [problem] if result is None else [c.message for c in result.failures]
        tags[TAG_MONITOR_FAILURES] = "; ".join(failures)[:4000]
    metrics = result.metrics if result is not None else {}
    tags[TAG_DECISION] = TRIGGERING if decision.action == TRIGGER else decision.action
    run_name = f"monitoring-{environment}-{now:%Y%m%dT%H%M%S}"
    run_id = tracker.log_finished_run(experiment, tags, metrics, run_name)
    print(f"logged to MLflow: run {run_id} in experiment '{experiment}'", flush=True)
    if result is not None:
        title = f"{model.name} in {environment}, {now:%Y-%m-%d %H:%M} UTC: {current_uri}"
        _log_picture(tracker, run_id, result, title, spec.max_psi)
    if decision.action == TRIGGER:
        _trigger(retraining, newest, run_id, now)
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
            "check. Add one (docs/data-scientists/monitoring.md)"
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


def _check(
    store, tracker: Tracker, spec: Monitoring, served_run: str, current_uri: str
) -> tuple[MonitorResult | None, str]:
    """The checks on today's data against the served run's reference, both downloaded to
    local files first (read from there in batches: a table larger than the pod's memory
    fits); (None, the problem) when the data cannot be checked."""
    import tempfile

    from ..monitoring.tables import open_table

    with tempfile.TemporaryDirectory(prefix="modelci-monitor-") as where:
        try:
            current = open_table(_download_data(store, current_uri, Path(where)), current_uri)
            source = f"artifact {spec.reference} of run {served_run}"
            path = _download_reference(tracker, served_run, spec.reference, Path(where))
            return evaluate(spec, open_table(path, source), current), ""
        except DataProblem as error:
            return None, str(error)


def _download_data(store, uri: str, where: Path) -> Path:
    """The day's data, streamed from S3 into a file of `where`."""
    import shutil

    path = where / "data"
    try:
        with store.open_object(uri) as body, path.open("wb") as out:
            shutil.copyfileobj(body, out, 1 << 20)
    except ModelciError as error:
        raise DataProblem(f"the monitoring data could not be read: {error}") from None
    return path


def _download_reference(tracker: Tracker, run_id: str, path: str, where: Path) -> Path:
    target = where / "reference"
    target.mkdir()
    try:
        return tracker.download_artifact_file(run_id, path, target)
    except ModelciError as error:
        raise DataProblem(
            f"the reference {path} of the served run {run_id} could not be read ({error}); "
            f"log it in the training script: mlflow.log_artifact('{path}')"
        ) from None


def _log_picture(
    tracker: Tracker, run_id: str, result: MonitorResult, title: str, max_psi: float
) -> None:
    """The check's picture beside its figures; a failure to store it is a warning only, the
    figures and the decision are recorded already."""
    from ..monitoring.drift_svg import drift_svg

    picture = drift_svg(title, result.distributions, max_psi)
    try:
        tracker.log_artifact_text(run_id, PICTURE, picture, "image/svg+xml")
    except ModelciError as error:
        print(f"warning: the picture was not logged: {error}", file=sys.stderr, flush=True)
        return
    print(f"picture: artifact {PICTURE} of run {run_id}", flush=True)


@dataclass(frozen=True)
class _Retraining:
    """What a check needs to start at most one retraining pipeline per drift event."""

    tracker: Tracker
    gitlab: GitLabAccess
    claims: EventClaims
    model: str
    environment: str
    served_run: str

    @classmethod
    def from_env(cls, env: Mapping[str, str], tracker: Tracker, model: str) -> _Retraining:
        from ..systems.s3 import S3Store

        return cls(
            tracker=tracker,
            gitlab=GitLabAccess.from_env(env),
            claims=EventClaims(S3Store.from_env(env), _required(env, "MODELCI_DATA_URI")),
            model=model,
            environment=_required(env, "MODELCI_ENVIRONMENT"),
            served_run=_required(env, "MLFLOW_RUN_ID"),
        )

    def next_claim(self, newest: Claim | None, run_id: str, now: datetime) -> Claim:
        """The claim `run_id` makes on the drift event after `newest`."""
        number = 1 if newest is None else newest.number + 1
        event = event_id(self.model, self.environment, self.served_run, number, now)
        return Claim(number=number, event=event, run=run_id, at=now)


def _last_trigger(
    retraining: _Retraining, experiment: str
) -> tuple[Claim | None, LastTrigger | None]:
    """The newest drift event's claim, and the retraining the in-flight and cool-down rules
    count: the newest event's while it still counts (settled first when it was left in
    doubt), else the environment's newest triggered run."""
    from ..systems.tracking import TAG_ENVIRONMENT

    now = datetime.now(UTC)
    try:
        newest = retraining.claims.newest()
    except ModelciError as error:
        print(f"warning: the drift events were not read: {error}", file=sys.stderr, flush=True)
        return None, LastTrigger(at=now, outcome="", pipeline="unknown: the claims are unread")
    if newest is not None:
        pending = pending_trigger(retraining.tracker, newest, retraining.gitlab, now)
        if pending is not None:
            return newest, pending
    found = retraining.tracker.newest_run(
        experiment, {TAG_ENVIRONMENT: retraining.environment, TAG_DECISION: TRIGGERED}
    )
    if found is None:
        return newest, None
    return newest, LastTrigger(
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


def _trigger(retraining: _Retraining, newest: Claim | None, run_id: str, now: datetime) -> None:
    """Claim the drift event after `newest` and, when this run owns it, start its pipeline.
    What became of it is recorded beside the reason, which stays; a failure is tried again
    by a later failed check, as another event."""
    from ..systems.gitlab_api import TriggerUnknown

    gitlab, tracker = retraining.gitlab, retraining.tracker
    try:
        gitlab.require_trigger()
        claim = retraining.claims.take(retraining.next_claim(newest, run_id, now))
    except ModelciError as error:
        _record(tracker, run_id, TRIGGER_FAILED, {TAG_TRIGGER_ERROR: str(error)})
        print(f"retraining NOT triggered: {error}", flush=True)
        return
    if claim.run != run_id:
        _record(tracker, run_id, SKIP, {TAG_EVENT: claim.event, TAG_OWNER: claim.run})
        print(f"retraining: skip (monitoring run {claim.run} owns drift event {claim.event})")
        return
    variables = {MODEL_VARIABLE: retraining.model, TRIGGER_VARIABLE: run_id}
    try:
        pipeline = gitlab.trigger(variables, claim.event)
    except ModelciError as error:
        doubt = isinstance(error, TriggerUnknown)  # GitLab may have started it
        decision = TRIGGER_UNKNOWN if doubt else TRIGGER_FAILED
        _record(tracker, run_id, decision, {TAG_EVENT: claim.event, TAG_TRIGGER_ERROR: str(error)})
        print(f"retraining {'NOT KNOWN to be' if doubt else 'NOT'} triggered: {error}", flush=True)
        return
    where = pipeline.web_url or pipeline.id
    _record(tracker, run_id, TRIGGERED, {TAG_EVENT: claim.event, TAG_PIPELINE: where})
    print(
        f"retraining triggered: pipeline {where} of {gitlab.project} on {gitlab.ref} for drift "
        f"event {claim.event}",
        flush=True,
    )


def _record(tracker: Tracker, run_id: str, decision: str, tags: Mapping[str, str]) -> None:
    """The trigger's outcome on the monitoring run; its reason tag is left as it was."""
    tracker.set_tags(run_id, {TAG_DECISION: decision, **{k: v[:4000] for k, v in tags.items()}})
