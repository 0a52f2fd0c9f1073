"""A retraining pipeline, started by a failed monitoring check, reporting back.

The monitoring run that triggered it is named in the pipeline's variables; each step of the
pipeline (train, gate, promote) records on that run what became of the retraining, so the
monitoring knows when it is no longer in flight and a person reads every decision in MLflow.
Only ids travel as variables: GitLab expands `$...` in them, and a user's text must never be
expanded.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import ModelciError

MODEL_VARIABLE = "MODELCI_RETRAIN"  # the model to retrain
TRIGGER_VARIABLE = "MODELCI_RETRAIN_TRIGGER"  # the monitoring run that triggered it

TAG_KIND = "modelci.kind"
TAG_MONITORS_RUN = "modelci.monitors_run"  # the served run a monitoring run checked
TAG_MONITOR = "modelci.monitor"  # passed, failed or no-data
TAG_MONITOR_FAILURES = "modelci.monitor.failures"
TAG_DECISION = "modelci.retrain.decision"  # triggered, skipped, none or trigger-failed
TAG_REASON = "modelci.retrain.reason"
TAG_PIPELINE = "modelci.retrain.pipeline"  # the retraining pipeline's URL (or id)
TAG_OUTCOME = "modelci.retrain.outcome"  # what the retraining pipeline reported
TAG_OUTCOME_AT = "modelci.retrain.outcome_at"
TAG_TRIGGERED_BY = "modelci.retrain.triggered_by"  # on the retrained run: the monitoring run

TRIGGERED = "triggered"
TRIGGER_FAILED = "trigger-failed"
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def monitoring_experiment(experiment: str) -> str:
    """The MLflow experiment of a model's monitoring runs, beside its training experiment."""
    return f"{experiment}/monitoring"


@dataclass(frozen=True)
class RetrainRequest:
    """What the trigger asked for: which model, from which monitoring run."""

    model: str
    trigger_run: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetrainRequest | None:
        """The request of a retraining pipeline; None in any other pipeline."""
        model = env.get(MODEL_VARIABLE, "").strip()
        if not model:
            return None
        trigger = env.get(TRIGGER_VARIABLE, "").strip()
        if not _RUN_ID.fullmatch(trigger):
            raise ModelciError(
                f"{MODEL_VARIABLE} is set, so this is a retraining pipeline, but "
                f"{TRIGGER_VARIABLE} is not an MLflow run id ({len(trigger)} characters). "
                "Retraining pipelines are started by `modelci monitor`; to retrain by hand, "
                "run the default branch's pipeline without these variables"
            )
        return cls(model=model, trigger_run=trigger)


def record_outcome(tracker, request: RetrainRequest, outcome: str) -> None:
    """Tell the triggering monitoring run what became of the retraining (and the log). A
    note, never the job's result: when MLflow refuses it (the promote job's stand user has no
    permission on the project's experiment under MLflow auth), the job says so and goes on,
    so a promotion that happened is not reported as failed, nor a failure hidden."""
    tags = {TAG_OUTCOME: outcome, TAG_OUTCOME_AT: datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        tracker.set_tags(request.trigger_run, tags)
    except ModelciError as error:
        print(
            f"warning: the outcome was not recorded on monitoring run {request.trigger_run}: "
            f"{error}",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"retraining of {request.model} (triggered by monitoring run {request.trigger_run}): "
        f"{outcome}",
        flush=True,
    )
