"""`modelci gate`: the quality gate on this pipeline's runs. Tags each run passed or failed
with the reasons, writes a JUnit report for the merge request widget, fails on any failure."""

from __future__ import annotations

import argparse
import os

from ..errors import ModelciError
from ..lifecycle.retraining import RetrainRequest, record_outcome
from ..lifecycle.workspace import (
    STATE_DIR,
    add_config_arguments,
    load_job,
    read_run_state,
    read_state,
    write_state,
)

REPORT_PATH = STATE_DIR / "gate-report.xml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def _write_record(model: str, verdict: str) -> None:
    """The gate's verdict with the run and its digests, in one file of this job's artifacts:
    GitLab keeps it as the job wrote it, so promotion after the merge takes the run and checks
    its bytes against it (standcopies.TrainedBytes), not against anything a branch can edit."""
    from ..lifecycle.standcopies import RECORD_FIELDS

    record = {**read_state(model), "gate": verdict}
    write_state(model, "gate", **{name: record.get(name, "") for name in RECORD_FIELDS})


def run(args: argparse.Namespace) -> int:
    from ..lifecycle.gate import Served, evaluate_gate, gate_junit_report, summary
    from ..systems.tracking import Tracker, gate_tags

    job = load_job(args)
    tracker = Tracker(job.settings.tracking_uri)
    request = RetrainRequest.from_env(os.environ)
    last = job.config.stands[-1].name  # what users are served, whatever mlops.yaml calls it
    reports, failed = [], []
    for model in job.models([request.model] if request else args.model):
        run_id = read_run_state(model.name).run_id
        served = None
        if model.gate.compare_with_production:
            metrics = tracker.served_metrics(job.names(model).registered_model, last)
            served = Served(last, metrics) if metrics is not None else None
        result = evaluate_gate(model.gate, tracker.run_metrics(run_id), served)
        tracker.set_tags(run_id, gate_tags(result))
        _write_record(model.name, "passed" if result.passed else "failed")
        print(f"{model.name} (run {run_id}):\n{summary(result)}", flush=True)
        reports.append((f"quality gate: {model.name}", result))
        if not result.passed:
            failed.append(model.name)
            if request is not None:
                reasons = "; ".join(check.message for check in result.failures)
                outcome = f"run {run_id} rejected by the gate, {last} unchanged: {reasons}"
                record_outcome(tracker, request, outcome)
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text(gate_junit_report(reports), encoding="utf-8")
    if failed:
        raise ModelciError(
            f"quality gate failed for {', '.join(failed)}; nothing will be deployed "
            "(the failed checks are listed above and in the merge request's test report)"
        )
    return 0
