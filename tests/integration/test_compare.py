"""`modelci compare` against the REAL MLflow server of the session and the fake GitLab API
(fake_gitlab.py: a GitLab server cannot run here), and the failure policy both merge request
notes share (`compare` and `report`): a note that cannot be written is a warning, the job
exits 0, and it waits a bounded time."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelci.cli import main
from modelci.config.naming import names_for
from modelci.review.contract import ACK_LABEL, ACK_VARIABLE
from modelci.review.note import NOTE_MARKER
from modelci.systems.gitlab_api import TOKEN_VARIABLE
from modelci.systems.tracking import (
    GATE_FAILED,
    GATE_PASSED,
    TAG_BRANCH,
    TAG_ENVIRONMENT,
    TAG_GATE,
    TAG_GATE_REASONS,
    Tracker,
)
from tests.harness.ports import HOST

from .fake_gitlab import FakeGitLab, running

TOKEN = "glpat-compare-s3cret-token"
BRANCH = "feature/better-churn"
MR_IID = 7
BOUND_SECONDS = 15

CONFIG = """\
version: 1
stands:
  - name: staging
  - name: production
    manual: true
models:
  - name: churn
    flavor: sklearn
    train: {entrypoint: train.py}
    gate:
      metrics:
        - {name: accuracy, min: 0.7}
        - {name: log_loss, max: 0.6}
    batch:
      dags:
        - {kind: inference, entrypoint: score.py}
    online: {enabled: true}
"""


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(TOKEN) as fake:
        yield fake


@dataclass
class Project:
    """A model repository of its own (unique project path: its own experiment and model)."""

    path: str
    repo: Path
    tracking_uri: str

    @property
    def names(self):
        return names_for(self.path, BRANCH, "churn")

    @property
    def registered_model(self) -> str:
        return self.names.registered_model


@pytest.fixture
def project(tmp_path: Path, mlflow_server, monkeypatch: pytest.MonkeyPatch) -> Project:
    repo = tmp_path / "churn"
    repo.mkdir()
    (repo / "mlops.yaml").write_text(CONFIG, encoding="utf-8")
    for entrypoint in ("train.py", "score.py"):
        (repo / entrypoint).write_text("print('hello')\n", encoding="utf-8")
    for name in list(os.environ):
        if name.startswith(("CI_", "MODELCI_", "MLFLOW_", "GITLAB_")):
            monkeypatch.delenv(name)
    for name, value in mlflow_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(repo)
    return Project(f"ml/churn-{uuid.uuid4().hex[:8]}", repo, mlflow_server.tracking_uri)


def merge_request_env(project: Project, gitlab_url: str, **extra: str) -> dict[str, str]:
    """What GitLab sets in a merge request pipeline, and the platform's variables."""
    server = "https://gitlab.example.com"
    return {
        "CI": "true",
        "CI_SERVER_URL": gitlab_url,
        "CI_PROJECT_PATH": project.path,
        "CI_PROJECT_URL": f"{server}/{project.path}",
        "CI_COMMIT_REF_NAME": BRANCH,
        "CI_COMMIT_REF_SLUG": "feature-better-churn",
        "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
        "CI_PIPELINE_ID": "4242",
        "CI_PIPELINE_URL": f"{server}/{project.path}/-/pipelines/4242",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": str(MR_IID),
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": BRANCH,
        "CI_MERGE_REQUEST_PROJECT_PATH": project.path,
        "MODELCI_AIRFLOW_URL": "https://airflow.example.com",
        "MODELCI_INGRESS_DOMAIN": "models.example.com",
        TOKEN_VARIABLE: TOKEN,
        **extra,
    }


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    seconds: float


def run_modelci(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    *args: str,
) -> Outcome:
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        capsys.readouterr()
        started = time.monotonic()
        code = main(list(args))
        seconds = time.monotonic() - started
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err, seconds)


# --- MLflow data, made with the MLflow client as the pipeline's jobs would leave it ----------


def trained_run(
    project: Project, metrics: dict[str, float], *, gate: str = GATE_PASSED, branch=BRANCH
) -> str:
    import mlflow

    time.sleep(0.01)  # distinct start times: "newest" is well defined
    names = names_for(project.path, branch, "churn")
    tracker = Tracker(project.tracking_uri)
    run_id = tracker.start_run(
        names.experiment,
        {
            TAG_BRANCH: branch,
            TAG_ENVIRONMENT: names.environment,
            TAG_GATE: gate,
            TAG_GATE_REASONS: "all checks passed" if gate == GATE_PASSED else "accuracy too low",
        },
        run_name="train",
    )
    client = mlflow.MlflowClient(project.tracking_uri)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    tracker.end_run(run_id, "FINISHED")
    return run_id


def register(project: Project, run_id: str, *aliases: str) -> str:
    import mlflow

    client = mlflow.MlflowClient(project.tracking_uri)
    name = project.registered_model
    with contextlib.suppress(mlflow.exceptions.MlflowException):  # exists already
        client.create_registered_model(name)
    version = client.create_model_version(
        name, f"s3://mlops/mlflow-artifacts/{run_id}/model", run_id=run_id
    )
    for alias in aliases:
        client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def the_note(gitlab: FakeGitLab) -> str:
    notes = gitlab.notes[MR_IID]
    assert len(notes) == 1, notes
    assert notes[0]["body"].startswith(NOTE_MARKER + "\n")
    return notes[0]["body"]


# --- the note -------------------------------------------------------------------------------


def test_first_pipeline_creates_the_note_and_later_ones_edit_it_in_place(
    project, gitlab, monkeypatch, capsys
):
    gitlab.add_merge_request(project.path, BRANCH, MR_IID)
    gitlab.add_note(MR_IID, "LGTM, but what about the production model?")  # a reviewer's
    old = trained_run(project, {"accuracy": 0.80, "log_loss": 0.50}, branch="main")
    older = trained_run(project, {"accuracy": 0.75, "log_loss": 0.55}, branch="main")
    register(project, older, "production")  # v1
    register(project, old, "staging")  # v2
    first_candidate = trained_run(project, {"accuracy": 0.90, "log_loss": 0.40})
    trained_run(project, {"accuracy": 0.99, "log_loss": 0.1}, gate=GATE_FAILED)  # not a candidate
    env = merge_request_env(project, gitlab.url)

    first = run_modelci(monkeypatch, capsys, env, "compare")

    assert first.code == 0, first.err
    assert f"comparison added to merge request !{MR_IID}" in first.out
    assert first.err == ""
    assert len(gitlab.notes[MR_IID]) == 2  # the reviewer's and ours
    ours = gitlab.notes[MR_IID][1]["body"]
    assert ours.startswith(NOTE_MARKER + "\n")
    assert f"run [`{first_candidate[:12]}`]" in ours
    assert "quality gate ✅ **passed**: `all checks passed`" in ours
    assert (
        f"`staging` will serve version **3** of `{project.registered_model}` "
        "(a new version, registered from the candidate run)"
    ) in ours
    rows = [line for line in ours.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `accuracy` | higher is better (≥ 0.7) | 0.9 | 0.8 | +0.1 ✅")
    assert "| 0.75 | +0.15 ✅ better |" in rows[0]
    assert rows[1].startswith("| `log_loss` | lower is better (≤ 0.6) | 0.4 | 0.5 | -0.1 ✅")
    # The review against production (the last stand): these runs have no model, so what
    # needs one says why it is missing; the charts need only the metrics.
    assert "##### Input contract against `production v1`" in ours
    assert "Not available: `run " in ours and "has no logged model" in ours
    assert "```mermaid\n%%{init:" in ours and "\nxychart-beta\n" in ours
    assert '    x-axis ["v1", "candidate"]\n' in ours  # production's versions, then ours
    assert "| value | 0.75 | 0.9 |" in ours and "| min (line) | 0.7 | 0.7 |" in ours
    assert "| value | 0.55 | 0.4 |" in ours and "| max (line) | 0.6 | 0.6 |" in ours
    assert "review against production v1 (time taken: contract " in first.out
    tracking = project.tracking_uri.rstrip("/")
    assert f"{tracking}/#/experiments/" in ours and f"/runs/{first_candidate})" in ours
    assert f"/runs/{old})" in ours and f"/runs/{older})" in ours
    assert f"https://airflow.example.com/dags/{project.names.dag_id('inference')}" in ours
    assert "https://" + project.names.k8s_name in ours  # the model API
    assert "/-/environments?search=review%2Ffeature%2Fbetter-churn" in ours
    # The job log shows the comparison too.
    assert "on merge: staging will serve version 3" in first.out
    assert "accuracy" in first.out and "better" in first.out

    second_candidate = trained_run(project, {"accuracy": 0.70, "log_loss": 0.45})
    second = run_modelci(monkeypatch, capsys, env, "compare")
    third = run_modelci(monkeypatch, capsys, env, "compare")

    assert second.code == 0 and third.code == 0
    assert f"comparison updated on merge request !{MR_IID}" in second.out
    assert "is up to date" in third.out
    assert len(gitlab.notes[MR_IID]) == 2  # still one note of ours, edited in place
    edited = gitlab.notes[MR_IID][1]["body"]
    assert edited != ours
    assert f"run [`{second_candidate[:12]}`]" in edited
    assert "| `accuracy` | higher is better (≥ 0.7) | 0.7 | 0.8 | -0.1 ❌ worse |" in edited
    assert len(gitlab.calls("POST")) == 1 and len(gitlab.calls("PUT")) == 1
    assert all(call.token == TOKEN for call in gitlab.requests)
    for outcome in (first, second, third):
        assert TOKEN not in outcome.out + outcome.err


def test_a_candidate_already_registered_keeps_its_version(project, gitlab, monkeypatch, capsys):
    gitlab.add_merge_request(project.path, BRANCH, MR_IID)
    candidate = trained_run(project, {"accuracy": 0.9, "log_loss": 0.3})
    register(project, trained_run(project, {"accuracy": 0.8}, branch="main"), "staging")
    version = register(project, candidate)  # v2, no alias yet

    outcome = run_modelci(monkeypatch, capsys, merge_request_env(project, gitlab.url), "compare")

    assert outcome.code == 0, outcome.err
    note = the_note(gitlab)
    assert f"`staging` will serve version **{version}** of" in note
    assert "already registered from the candidate run" in note
    # production serves nothing: shown, not guessed
    assert "`production (nothing)`" in note
    assert "| `log_loss` | lower is better (≤ 0.6) | 0.3 | — | n/a |" in note


def test_first_model_ever_goes_to_version_1_and_no_candidate_is_explained(
    project, gitlab, monkeypatch, capsys
):
    gitlab.add_merge_request(project.path, BRANCH, MR_IID)
    env = merge_request_env(project, gitlab.url)
    trained_run(project, {"accuracy": 0.5}, gate=GATE_FAILED)

    before = run_modelci(monkeypatch, capsys, env, "compare")

    assert before.code == 0, before.err
    note = the_note(gitlab)
    assert "**No candidate**: `no run to serve for environment" in note
    assert "**On merge**: nothing is promoted: there is no candidate." in note

    trained_run(project, {"accuracy": 0.8, "log_loss": 0.5})
    after = run_modelci(monkeypatch, capsys, env, "compare")

    assert after.code == 0, after.err
    note = the_note(gitlab)
    assert f"`staging` will serve version **1** of `{project.registered_model}`" in note


def test_without_a_merge_request_or_a_token_the_comparison_is_only_printed(
    project, gitlab, monkeypatch, capsys
):
    gitlab.add_merge_request(project.path, BRANCH, MR_IID)
    trained_run(project, {"accuracy": 0.8, "log_loss": 0.5})
    env = merge_request_env(project, gitlab.url)
    no_mr = {**env, "CI_MERGE_REQUEST_IID": ""}
    no_token = {**env, TOKEN_VARIABLE: ""}

    outside = run_modelci(monkeypatch, capsys, no_mr, "compare")
    tokenless = run_modelci(monkeypatch, capsys, no_token, "compare")

    assert outside.code == 0 and "not a merge request pipeline" in outside.out
    assert tokenless.code == 0
    assert f"WARNING: no note on merge request !{MR_IID}: {TOKEN_VARIABLE}" in tokenless.err
    assert "on merge: staging will serve version 1" in tokenless.out
    assert gitlab.requests == []


# --- the failure policy ---------------------------------------------------------------------


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A port that is bound but never listens: connections are refused (GitLab down)."""
    with socket.socket() as closed:
        closed.bind((HOST, 0))
        yield f"http://{HOST}:{closed.getsockname()[1]}"


FAILURES = ["down", "500", "503", "401", "403", "hangs"]


def break_gitlab(gitlab: FakeGitLab, failure: str, refused_url: str) -> str:
    """Make the fake fail as `failure` says; the server URL the job should use."""
    if failure == "down":
        return refused_url
    if failure == "hangs":
        gitlab.hang(60)
    else:
        gitlab.fail_with(int(failure))
    return gitlab.url


def assert_warned_and_bounded(outcome: Outcome, command: str) -> None:
    assert outcome.code == 0, outcome.err
    assert f"modelci {command}: WARNING: the merge request note was not written" in outcome.err
    assert outcome.seconds < BOUND_SECONDS, outcome.seconds
    assert TOKEN not in outcome.out + outcome.err
    assert "Traceback" not in outcome.err


@pytest.mark.parametrize("failure", FAILURES)
def test_compare_when_gitlab_fails_warns_and_exits_0_in_bounded_time(
    project, gitlab, refused_url, monkeypatch, capsys, failure
):
    gitlab.add_merge_request(project.path, BRANCH, MR_IID)
    trained_run(project, {"accuracy": 0.8, "log_loss": 0.5})
    server = break_gitlab(gitlab, failure, refused_url)

    outcome = run_modelci(monkeypatch, capsys, merge_request_env(project, server), "compare")

    assert_warned_and_bounded(outcome, "compare")
    assert "on merge: staging will serve version 1" in outcome.out  # the log still has it
    if failure in ("500", "503"):
        assert len(gitlab.requests) == 3  # the first try and two retries
        assert "after 3 attempts" in outcome.err
    if failure in ("401", "403"):
        assert len(gitlab.requests) == 1 and TOKEN_VARIABLE in outcome.err
    if failure == "hangs":
        assert "no answer within 5 s" in outcome.err


# --- report's note, under the same policy ---------------------------------------------------


def report_env(project: Project, gitlab_url: str) -> dict[str, str]:
    env = merge_request_env(project, gitlab_url)
    for name in list(env):
        if name.startswith("CI_MERGE_REQUEST_"):
            del env[name]
    return {**env, "CI_PIPELINE_SOURCE": "push"}


def resolved_state(project: Project) -> None:
    state = project.repo / ".modelci" / "churn" / "resolve.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"run_id": "r" * 32, "experiment_id": "1"}), encoding="utf-8")


@pytest.fixture
def report_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """`report` needs no MLflow: the links come from the state the earlier jobs left."""
    repo = tmp_path / "churn"
    repo.mkdir()
    (repo / "mlops.yaml").write_text(CONFIG, encoding="utf-8")
    for entrypoint in ("train.py", "score.py"):
        (repo / entrypoint).write_text("print('hello')\n", encoding="utf-8")
    for name in list(os.environ):
        if name.startswith(("CI_", "MODELCI_", "GITLAB_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example.com")
    monkeypatch.chdir(repo)
    project = Project(f"ml/churn-{uuid.uuid4().hex[:8]}", repo, "http://mlflow.example.com")
    resolved_state(project)
    return project


def test_report_puts_its_links_note_on_the_open_merge_request(
    report_project, gitlab, monkeypatch, capsys
):
    gitlab.add_merge_request(report_project.path, BRANCH, MR_IID)
    env = report_env(report_project, gitlab.url)

    first = run_modelci(monkeypatch, capsys, env, "report")
    again = run_modelci(monkeypatch, capsys, env, "report")

    assert first.code == 0 and again.code == 0, first.err + again.err
    assert f"links added to merge request !{MR_IID}" in first.out
    assert f"links unchanged on merge request !{MR_IID}" in again.out
    (note,) = gitlab.notes[MR_IID]
    assert "/#/experiments/1/runs/" + "r" * 32 in note["body"]


@pytest.mark.parametrize("failure", FAILURES)
def test_report_when_gitlab_fails_warns_and_exits_0_in_bounded_time(
    report_project, gitlab, refused_url, monkeypatch, capsys, failure
):
    gitlab.add_merge_request(report_project.path, BRANCH, MR_IID)
    server = break_gitlab(gitlab, failure, refused_url)

    outcome = run_modelci(monkeypatch, capsys, report_env(report_project, server), "report")

    assert_warned_and_bounded(outcome, "report")
    assert (report_project.repo / ".modelci" / "report.env").exists()  # the rest was done


def test_report_without_a_token_warns_and_exits_0(report_project, gitlab, monkeypatch, capsys):
    env = {**report_env(report_project, gitlab.url), TOKEN_VARIABLE: ""}

    outcome = run_modelci(monkeypatch, capsys, env, "report")

    assert outcome.code == 0
    assert f"modelci report: WARNING: no note on merge requests: {TOKEN_VARIABLE}" in outcome.err
    assert gitlab.requests == []


# --- the input contract against production ----------------------------------------------------

SIGNATURE_INPUTS = [
    {"type": "double", "name": "tenure", "required": True},
    {"type": "long", "name": "calls", "required": True},
]


def with_model(project: Project, run_id: str, inputs: list[dict] | None) -> None:
    """The run's model as `save_model` + `log_artifacts` leave it: model/MLmodel, with the
    signature MLflow writes (JSON strings), or none."""
    import mlflow

    document = {"flavors": {"python_function": {"loader_module": "mlflow.sklearn"}}}
    if inputs is not None:
        outputs = [{"type": "tensor", "tensor-spec": {"dtype": "bool", "shape": [-1]}}]
        document["signature"] = {"inputs": json.dumps(inputs), "outputs": json.dumps(outputs)}
    client = mlflow.MlflowClient(project.tracking_uri)
    client.log_text(run_id, json.dumps(document), "model/MLmodel")  # JSON is YAML


def production_with_signature(project: Project) -> None:
    import mlflow

    run_id = trained_run(project, {"accuracy": 0.8, "log_loss": 0.5}, branch="main")
    with_model(project, run_id, SIGNATURE_INPUTS)
    client = mlflow.MlflowClient(project.tracking_uri)
    client.create_registered_model(project.registered_model)
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version(project.registered_model, source, run_id=run_id)
    client.set_registered_model_alias(project.registered_model, "production", version.version)


def test_a_breaking_input_change_fails_the_check_until_acknowledged(
    project, gitlab, monkeypatch, capsys
):
    gitlab.add_merge_request(project.path, BRANCH, MR_IID)
    production_with_signature(project)
    candidate = trained_run(project, {"accuracy": 0.9, "log_loss": 0.4})
    with_model(project, candidate, [{"type": "string", "name": "tenure"}])  # retyped; no calls
    env = merge_request_env(project, gitlab.url)

    refused = run_modelci(monkeypatch, capsys, env, "compare")

    assert refused.code == 1, refused.out + refused.err
    assert "modelci compare: ERROR: model 'churn' breaks the input contract" in refused.err
    assert "input `calls` is removed; input `tenure` is now string (was double)" in refused.err
    assert f"add the label {ACK_LABEL}" in refused.err and "Traceback" not in refused.err
    note = the_note(gitlab)  # written before failing
    assert "❌ **Breaking change** for the model API's clients" in note
    assert "| `tenure` | retyped | `double` | `string` |" in note
    # What needs the served models says why it could not be computed; the rest is there.
    reason = "Not available: `'mlflow-artifacts:/"
    assert note.count(reason) == 2 and "MODELCI_ARTIFACTS_DESTINATION is not set" in note
    assert "**Parameters**: the same 0 as `production v1`." in note

    by_label = run_modelci(
        monkeypatch, capsys, {**env, "CI_MERGE_REQUEST_LABELS": f"docs,{ACK_LABEL}"}, "compare"
    )
    by_variable = run_modelci(monkeypatch, capsys, {**env, ACK_VARIABLE: "true"}, "compare")

    assert by_label.code == 0, by_label.err
    assert f"breaking change acknowledged by the label {ACK_LABEL}" in by_label.out
    assert by_variable.code == 0, by_variable.err
    note = the_note(gitlab)
    assert f"acknowledged by the `variable {ACK_VARIABLE}=true`" in note


def test_a_candidate_without_signature_is_told_how_to_log_one(project, gitlab, monkeypatch, capsys):
    gitlab.add_merge_request(project.path, BRANCH, MR_IID)
    production_with_signature(project)
    with_model(project, trained_run(project, {"accuracy": 0.9, "log_loss": 0.4}), None)

    outcome = run_modelci(monkeypatch, capsys, merge_request_env(project, gitlab.url), "compare")

    assert outcome.code == 0, outcome.err  # nothing to hold the merge on: shown, not failed
    note = the_note(gitlab)
    assert "logged **without a signature**" in note
    assert "signature=mlflow.models.infer_signature(X, model.predict(X))" in note
