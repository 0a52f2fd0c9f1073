"""One drift event starts exactly one retraining pipeline, whatever GitLab answers and however
many monitoring runs check at once.

The GitLab API is the fake of `fake_gitlab.py` (a GitLab server cannot run here), taught the
three ways a real one makes a naive trigger start two pipelines: it creates the pipeline and
answers 5xx, it answers after the client stopped waiting, and two monitoring runs ask at the
same time. S3 (SeaweedFS, which holds the event claims) and MLflow (the monitoring runs and
their records) are real. Each case ends with exactly one pipeline for one event."""

from __future__ import annotations

import csv
import io
import os
import random
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mlflow import MlflowClient

from modelci.config.macros import env_name
from modelci.lifecycle.retraining import EVENT_VARIABLE, SETTLE, Claim, EventClaims
from modelci.systems.gitlab_api import (
    EventLookup,
    GitLabError,
    TriggerUnknown,
    find_event_pipeline,
    trigger_event_pipeline,
)
from modelci.systems.s3 import S3Store
from tests.harness.mlflowserver import MlflowServer
from tests.harness.ports import HOST
from tests.harness.s3server import S3Server
from tests.harness.tools import VENV_BIN

from .fake_gitlab import FakeGitLab, running

API_TOKEN = "glpat-monitoring-reader-secret"  # MODELCI_GITLAB_TOKEN: read_api, Maintainer
TRIGGER_TOKEN = "glptt-monitoring-trigger-secret"  # MODELCI_TRIGGER_TOKEN
PROJECT = "ml/retrain-once"
MODEL = "churn"


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(API_TOKEN) as fake:
        fake.trigger_token = TRIGGER_TOKEN
        yield fake


def trigger(fake: FakeGitLab, event: str, *, read_token: str = API_TOKEN, **kwargs: str):
    variables = {"MODELCI_RETRAIN": MODEL, EVENT_VARIABLE: event}
    return trigger_event_pipeline(
        kwargs.get("url", fake.url),
        kwargs.get("trigger_token", TRIGGER_TOKEN),
        PROJECT,
        "main",
        variables,
        EventLookup(token=read_token, key=EVENT_VARIABLE, value=event),
    )


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the fake GitLab never got there"
        time.sleep(0.1)


# --- the trigger: never sent twice blindly ------------------------------------------------------


def test_a_pipeline_created_before_a_502_is_found_not_triggered_again(gitlab: FakeGitLab) -> None:
    gitlab.act_then_fail(502)

    pipeline = trigger(gitlab, "event-502")

    assert gitlab.event_pipelines(EVENT_VARIABLE) == {"event-502": [int(pipeline.id)]}
    assert len(gitlab.trigger_calls()) == 1
    reads = [r for r in gitlab.calls("GET") if "/pipelines" in r.path]
    assert reads and {r.token for r in reads} == {API_TOKEN}
    assert reads[0].query["source"] == "trigger" and reads[0].query["ref"] == "main"


def test_a_502_that_created_nothing_is_looked_for_then_sent_again(gitlab: FakeGitLab) -> None:
    gitlab.fail_with(502, count=1)  # a proxy refused it: GitLab never saw it

    pipeline = trigger(gitlab, "event-lost")

    assert gitlab.event_pipelines(EVENT_VARIABLE) == {"event-lost": [int(pipeline.id)]}
    methods = [r.method for r in gitlab.requests]
    assert methods[0] == "POST" and methods[-1] == "POST" and "GET" in methods
    assert len(gitlab.trigger_calls()) == 2


def test_an_answer_after_the_timeout_for_a_pipeline_that_exists_is_found(
    gitlab: FakeGitLab,
) -> None:
    gitlab.slow_trigger(create_after=0.5, answer_after=9)

    started = time.monotonic()
    pipeline = trigger(gitlab, "event-slow")

    assert time.monotonic() - started < 9  # it looked instead of waiting for the answer
    assert gitlab.event_pipelines(EVENT_VARIABLE) == {"event-slow": [int(pipeline.id)]}
    assert len(gitlab.trigger_calls()) == 1


def test_an_answer_after_the_timeout_before_the_pipeline_exists_is_never_sent_again(
    gitlab: FakeGitLab,
) -> None:
    gitlab.slow_trigger(create_after=8.5, answer_after=9.5)

    with pytest.raises(TriggerUnknown) as caught:
        trigger(gitlab, "event-later")

    message = str(caught.value)
    assert "no answer within 5 s" in message and "not sent again" in message
    assert TRIGGER_TOKEN not in message and API_TOKEN not in message
    assert gitlab.event_pipelines(EVENT_VARIABLE) == {}  # GitLab is still at it
    wait_for(lambda: gitlab.event_pipelines(EVENT_VARIABLE), seconds=10)
    lookup = EventLookup(API_TOKEN, EVENT_VARIABLE, "event-later")
    found = find_event_pipeline(gitlab.url, PROJECT, "main", lookup, datetime.now(UTC))
    assert found is not None
    assert gitlab.event_pipelines(EVENT_VARIABLE) == {"event-later": [int(found.id)]}
    assert len(gitlab.trigger_calls()) == 1


def test_without_a_token_to_look_with_a_5xx_is_never_sent_again(gitlab: FakeGitLab) -> None:
    gitlab.act_then_fail(502)

    with pytest.raises(TriggerUnknown, match="there is no MODELCI_GITLAB_TOKEN to look"):
        trigger(gitlab, "event-blind", read_token="")

    assert len(gitlab.trigger_calls()) == 1
    assert len(gitlab.event_pipelines(EVENT_VARIABLE)["event-blind"]) == 1


def test_gitlab_down_for_triggers_and_reads_leaves_the_event_in_doubt(gitlab: FakeGitLab) -> None:
    gitlab.fail_with(503)

    with pytest.raises(TriggerUnknown) as caught:
        trigger(gitlab, "event-down")

    assert "looking for it failed" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)  # the reads are retried, the trigger not
    assert len(gitlab.trigger_calls()) == 1


def test_a_refused_trigger_names_the_trigger_token_and_is_not_sent_again(
    gitlab: FakeGitLab,
) -> None:
    with pytest.raises(GitLabError) as caught:
        trigger(gitlab, "event-refused", trigger_token="glptt-wrong-secret")

    message = str(caught.value)
    assert not isinstance(caught.value, TriggerUnknown)
    assert "HTTP 404" in message and "MODELCI_TRIGGER_TOKEN" in message
    assert "MODELCI_GITLAB_TOKEN" not in message and "glptt-wrong-secret" not in message
    assert len(gitlab.requests) == 1 and gitlab.event_pipelines(EVENT_VARIABLE) == {}


def test_a_trigger_that_never_reached_gitlab_is_sent_again() -> None:
    with socket.socket() as closed:
        closed.bind((HOST, 0))
        url = f"http://{HOST}:{closed.getsockname()[1]}"
        with pytest.raises(GitLabError) as caught:
            trigger_event_pipeline(
                url, TRIGGER_TOKEN, PROJECT, "main", {}, EventLookup(API_TOKEN, "K", "v")
            )
    assert not isinstance(caught.value, TriggerUnknown)
    assert "unreachable" in str(caught.value) and "after 3 attempts" in str(caught.value)


# --- the claim: one owner per event -------------------------------------------------------------


@pytest.fixture
def store(s3: S3Server) -> Iterator[S3Store]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3.env.items():
            patch.setenv(name, value)
        yield S3Store(s3.endpoint_url, s3.region)


def test_of_runs_claiming_one_event_at_once_exactly_one_owns_it(
    s3: S3Server, store: S3Store
) -> None:
    claims = EventClaims(store, f"s3://{s3.bucket}/claims-{uuid.uuid4().hex[:8]}/data/churn/")
    runs = [uuid.uuid4().hex for _ in range(8)]
    start = threading.Barrier(len(runs))
    owners: dict[str, Claim] = {}

    def claim(run: str) -> None:
        start.wait()
        owners[run] = claims.take(Claim(1, f"event-of-{run[:6]}", run, datetime.now(UTC)))

    threads = [threading.Thread(target=claim, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({claim.run for claim in owners.values()}) == 1  # all agree on one owner
    (owner,) = {claim.run for claim in owners.values()}
    assert owners[owner].run == owner and claims.newest() == owners[owner]


# --- `modelci monitor`, as the production stand's monitoring DAG runs it --------------------------

CONFIG = """\
version: 1
python: "3.11"
stands:
  - name: staging
  - name: production
    manual: true
models:
  - name: churn
    flavor: sklearn
    train: {entrypoint: train.py}
    gate:
      metrics: [{name: accuracy, min: 0.7}]
    monitoring:
      data: scores/${ds}.csv
      reference: reference.csv
      features: [tenure_months, monthly_charges]
      max_psi: 0.2
      retrain: {cooldown_hours: 0}
"""
DAY = "2026-12-02"


@dataclass(frozen=True)
class Watched:
    """The production stand of one project, as its deploy leaves it: the model repository's
    config, the served run and its reference, a drifted day of data, the pod's variables."""

    repo: Path
    env: dict[str, str]
    tracking_uri: str
    experiment: str  # the monitoring runs' experiment
    claims: EventClaims


def table(rows: list[dict[str, float]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def customers(count: int, seed: int, tenure_shift: float = 0.0) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [
        {
            "tenure_months": round(rng.gauss(20 + tenure_shift, 5), 3),
            "monthly_charges": round(rng.gauss(70, 10), 3),
        }
        for _ in range(count)
    ]


@pytest.fixture
def watched(
    tmp_path: Path, mlflow_server: MlflowServer, gitlab: FakeGitLab, store: S3Store
) -> Watched:
    project = f"ml/once-{uuid.uuid4().hex[:8]}"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mlops.yaml").write_text(CONFIG)
    (repo / "train.py").write_text("")
    (repo / "reference.csv").write_bytes(table(customers(2000, seed=1)))
    client = MlflowClient(mlflow_server.tracking_uri)
    served = client.create_run(client.create_experiment(f"{project}/{MODEL}")).info.run_id
    client.log_artifact(served, str(repo / "reference.csv"))
    client.set_terminated(served)
    data_uri = (
        f"s3://{mlflow_server.s3.bucket}/retrain-once/stands/{project}/production/data/churn/"
    )
    store.put_bytes(f"{data_uri}scores/{DAY}.csv", table(customers(2000, seed=2, tenure_shift=10)))
    env = {
        **mlflow_server.env,
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
        "MLFLOW_RUN_ID": served,
        "MODELCI_PROJECT": project,
        "MODELCI_ENVIRONMENT": "production",
        "MODELCI_MODEL": MODEL,
        "MODELCI_EXPERIMENT": f"{project}/{MODEL}",
        "MODELCI_DATA_URI": data_uri,
        "MODELCI_GITLAB_URL": gitlab.url,
        "MODELCI_RETRAIN_REF": "main",
        env_name("ds"): DAY,
        "MODELCI_TRIGGER_TOKEN": TRIGGER_TOKEN,  # the trigger Secret's keys
        "MODELCI_GITLAB_TOKEN": API_TOKEN,
    }
    experiment = f"{project}/{MODEL}/monitoring"
    return Watched(repo, env, mlflow_server.tracking_uri, experiment, EventClaims(store, data_uri))


def start_check(watched: Watched, **extra: str) -> subprocess.Popen[str]:
    """The monitoring pod's command (its DAG's COMMAND, in the repository's checkout)."""
    argv = [str(VENV_BIN / "modelci"), "monitor", "--model", MODEL, "--stand", "production"]
    return subprocess.Popen(
        argv,
        cwd=watched.repo,
        env={**watched.env, **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check(watched: Watched, **extra: str) -> subprocess.CompletedProcess[str]:
    process = start_check(watched, **extra)
    return finished(process)


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=300)
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert done.returncode == 1, stdout + stderr  # the drift fails the check, as it should
    assert "FAILED" in stdout and TRIGGER_TOKEN not in stdout + stderr
    assert API_TOKEN not in stdout + stderr
    return done


def runs(watched: Watched) -> list[dict[str, str]]:
    """The monitoring runs' tags, oldest first, with the run id as `id`."""
    client = MlflowClient(watched.tracking_uri)
    experiment = client.get_experiment_by_name(watched.experiment)
    found = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [{**run.data.tags, "id": run.info.run_id} for run in found]


def one_pipeline(gitlab: FakeGitLab) -> tuple[str, int]:
    """The one event that got a pipeline, and that pipeline: anything else fails."""
    pipelines = gitlab.event_pipelines(EVENT_VARIABLE)
    assert len(pipelines) == 1 and len(next(iter(pipelines.values()))) == 1, pipelines
    ((event, (pipeline,)),) = pipelines.items()
    return event, pipeline


def test_a_pipeline_created_before_a_502_is_recorded_and_not_triggered_again(
    watched: Watched, gitlab: FakeGitLab
) -> None:
    gitlab.act_then_fail(502)

    first = check(watched)
    again = check(watched)

    event, pipeline = one_pipeline(gitlab)
    assert f"pipelines/{pipeline} of {watched.env['MODELCI_PROJECT']}" in first.stdout
    assert "retraining: skip (a retraining is in flight" in again.stdout
    triggered, skipped = runs(watched)
    assert triggered["modelci.retrain.decision"] == "triggered"
    assert triggered["modelci.retrain.event"] == event
    assert triggered["modelci.retrain.pipeline"].endswith(f"/pipelines/{pipeline}")
    assert triggered["modelci.retrain.reason"].startswith("failed checks: ")
    assert skipped["modelci.retrain.decision"] == "skip"
    assert gitlab.triggered[0]["variables"] == {
        "MODELCI_RETRAIN": MODEL,
        "MODELCI_RETRAIN_TRIGGER": triggered["id"],
        "MODELCI_RETRAIN_EVENT": event,
    }
    assert event.startswith(f"{MODEL}-production-{watched.env['MLFLOW_RUN_ID'][:8]}-")
    assert len(gitlab.trigger_calls()) == 1


def test_an_answer_after_the_timeout_is_left_in_doubt_then_found_by_the_next_check(
    watched: Watched, gitlab: FakeGitLab
) -> None:
    gitlab.slow_trigger(create_after=8.5, answer_after=9.5)

    first = check(watched)
    assert "retraining NOT KNOWN to be triggered" in first.stdout
    (doubt,) = runs(watched)
    assert doubt["modelci.retrain.decision"] == "trigger-unknown"
    assert doubt["modelci.retrain.reason"].startswith("failed checks: ")
    assert "no answer within 5 s" in doubt["modelci.retrain.trigger_error"]
    wait_for(lambda: gitlab.event_pipelines(EVENT_VARIABLE), seconds=15)

    again = check(watched)

    event, pipeline = one_pipeline(gitlab)
    assert f"drift event {event}: its pipeline" in again.stdout
    assert "retraining: skip (a retraining is in flight" in again.stdout
    settled, skipped = runs(watched)
    assert settled["modelci.retrain.decision"] == "triggered"
    assert settled["modelci.retrain.pipeline"].endswith(f"/pipelines/{pipeline}")
    assert settled["modelci.retrain.event"] == event
    assert settled["modelci.retrain.reason"] == doubt["modelci.retrain.reason"]
    assert skipped["modelci.retrain.decision"] == "skip"
    assert len(gitlab.trigger_calls()) == 1


def test_monitoring_runs_at_once_agree_on_one_owner_and_start_one_pipeline(
    watched: Watched, gitlab: FakeGitLab
) -> None:
    gitlab.slow_trigger(create_after=0.5, answer_after=1.5)  # a busy GitLab: they overlap

    processes = [start_check(watched) for _ in range(3)]
    outputs = [finished(process) for process in processes]

    event, pipeline = one_pipeline(gitlab)
    assert len(gitlab.trigger_calls()) == 1
    (owner,) = [run for run in runs(watched) if run["modelci.retrain.decision"] == "triggered"]
    assert owner["modelci.retrain.event"] == event
    assert owner["modelci.retrain.pipeline"].endswith(f"/pipelines/{pipeline}")
    others = [run for run in runs(watched) if run["id"] != owner["id"]]
    assert len(others) == 2 and {run["modelci.retrain.decision"] for run in others} == {"skip"}
    for run in others:  # lost the claim to the owner, or saw the owner's claim first
        lost = run.get("modelci.retrain.owner") == owner["id"]
        assert lost or run["modelci.retrain.reason"].startswith("a retraining is in flight")
    assert sum("retraining triggered" in out.stdout for out in outputs) == 1
    assert watched.claims.newest() == Claim(1, event, owner["id"], watched.claims.newest().at)


def test_an_event_that_never_started_is_settled_and_the_next_one_triggers(
    watched: Watched, gitlab: FakeGitLab, store: S3Store
) -> None:
    gitlab.fail_with(503)  # GitLab down: for the trigger and for reading pipelines
    first = check(watched)
    assert "retraining NOT KNOWN to be triggered" in first.stdout
    gitlab.fail_with(503, count=0)
    # The next check comes a day later: the claim is made older than SETTLE, as time would.
    claim = watched.claims.newest()
    older = Claim(claim.number, claim.event, claim.run, claim.at - SETTLE * 2)
    store.put_bytes(f"{watched.claims.uri}{claim.number:08d}.json", older.to_json())

    again = check(watched)

    event, _ = one_pipeline(gitlab)
    assert event != claim.event and event.endswith("-2")
    assert f"drift event {claim.event}: no pipeline" in again.stdout
    never, triggered = runs(watched)
    assert never["modelci.retrain.decision"] == "trigger-failed"
    assert never["modelci.retrain.reason"].startswith("failed checks: ")
    assert "HTTP 503" in never["modelci.retrain.trigger_error"]  # what happened first ...
    assert "settled later: no pipeline of drift event" in never["modelci.retrain.trigger_error"]
    assert triggered["modelci.retrain.decision"] == "triggered"
    assert triggered["modelci.retrain.event"] == event


def test_a_refused_trigger_keeps_the_reason_and_names_the_trigger_token(
    watched: Watched, gitlab: FakeGitLab
) -> None:
    refused = check(watched, MODELCI_TRIGGER_TOKEN="glptt-revoked-secret")

    assert "retraining NOT triggered" in refused.stdout
    assert "glptt-revoked-secret" not in refused.stdout + refused.stderr
    (run,) = runs(watched)
    assert run["modelci.retrain.decision"] == "trigger-failed"
    assert run["modelci.retrain.reason"].startswith("failed checks: ")
    assert "MODELCI_TRIGGER_TOKEN" in run["modelci.retrain.trigger_error"]
    assert "MODELCI_GITLAB_TOKEN" not in run["modelci.retrain.trigger_error"]
    assert gitlab.event_pipelines(EVENT_VARIABLE) == {} and len(gitlab.trigger_calls()) == 1
