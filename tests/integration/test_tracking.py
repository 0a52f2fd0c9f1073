"""Tracker against a real MLflow server that proxies artifacts to real S3 (SeaweedFS)."""

import os
import socket
import time
import uuid
from dataclasses import dataclass

import pytest

from modelci.errors import ModelciError
from modelci.systems.s3 import S3Store, parse_s3_uri
from modelci.systems.tracking import (
    GATE_FAILED,
    GATE_PASSED,
    PIN_TAG,
    TAG_BRANCH,
    TAG_ENVIRONMENT,
    TAG_GATE,
    Tracker,
    require_model_dir,
)
from tests.harness.ports import HOST


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def client_env(mlflow_server):
    """The variables a CI job has, set for the whole module (the training code reads them)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in mlflow_server.env.items():
            patch.setenv(name, value)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield mlflow_server


@pytest.fixture(scope="module")
def tracker(client_env):
    return Tracker(client_env.tracking_uri)


@pytest.fixture(scope="module")
def store(client_env):
    return S3Store(client_env.s3.endpoint_url, client_env.s3.region)


@dataclass(frozen=True)
class Trained:
    run_id: str
    experiment: str
    metrics: dict


def log_sklearn_model(run_id: str, metrics: dict) -> None:
    """What a user's training script does inside the run modelci started."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics)
        mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])


@pytest.fixture(scope="module")
def trained(tracker):
    experiment = unique("churn")
    run_id = tracker.start_run(experiment, {TAG_BRANCH: "feature/x"}, run_name="train")
    metrics = {"accuracy": 0.91, "rmse": 0.3}
    log_sklearn_model(run_id, metrics)
    tracker.end_run(run_id, "FINISHED")
    return Trained(run_id, experiment, metrics)


def s3_has_mlmodel(s3, storage_uri: str) -> bool:
    bucket, key = parse_s3_uri(storage_uri)
    listed = s3.client().list_objects_v2(Bucket=bucket, Prefix=f"{key}/MLmodel")
    return any(item["Key"] == f"{key}/MLmodel" for item in listed.get("Contents", []))


# -- runs --------------------------------------------------------------------------------------


def test_start_run_creates_the_experiment_once_and_tags_the_run(tracker):
    import mlflow

    experiment = unique("exp")
    first = tracker.start_run(experiment, {TAG_BRANCH: "main", TAG_ENVIRONMENT: "prod"}, "one")
    second = tracker.start_run(experiment, {}, "two")

    one, two = tracker.get_run(first), tracker.get_run(second)
    assert one.info.experiment_id == two.info.experiment_id
    assert mlflow.MlflowClient(tracker.tracking_uri).get_experiment(
        one.info.experiment_id
    ).name == (experiment)
    assert one.data.tags[TAG_BRANCH] == "main"
    assert one.info.run_name == "one"
    assert one.info.status == "RUNNING"

    tracker.set_tags(first, {TAG_GATE: GATE_PASSED, "modelci.gate_reasons": "all checks passed"})
    tracker.end_run(first, "FAILED")
    one = tracker.get_run(first)
    assert one.info.status == "FAILED"
    assert one.data.tags[TAG_GATE] == GATE_PASSED


def test_start_run_in_a_deleted_experiment_says_how_to_restore_it(tracker):
    import mlflow

    experiment = unique("deleted")
    run_id = tracker.start_run(experiment, {}, "r")
    client = mlflow.MlflowClient(tracker.tracking_uri)
    client.delete_experiment(tracker.get_run(run_id).info.experiment_id)

    with pytest.raises(ModelciError, match=f"experiment '{experiment}' is deleted.*restore"):
        tracker.start_run(experiment, {}, "again")


def test_end_run_rejects_unknown_status(tracker, trained):
    with pytest.raises(ValueError, match="RUNNING"):
        tracker.end_run(trained.run_id, "RUNNING")


def test_run_metrics_are_what_the_training_logged(tracker, trained):
    assert tracker.run_metrics(trained.run_id) == trained.metrics


def test_unknown_run_is_a_clear_error(tracker):
    with pytest.raises(ModelciError, match=r"read run 0123456789abcdef.*not found"):
        tracker.run_metrics("0123456789abcdef0123456789abcdef")


# -- model URIs --------------------------------------------------------------------------------


def test_logged_model_resolves_to_the_s3_directory_holding_mlmodel(
    tracker, trained, store, client_env
):
    (logged,) = tracker.logged_models(trained.run_id)
    assert logged.name == "model"
    assert logged.status == "READY"

    model_uri = tracker.model_uri_for_run(trained.run_id)
    assert model_uri == f"models:/{logged.model_id}"

    storage = tracker.resolve_storage_uri(model_uri, client_env.artifacts_destination)
    assert storage.startswith(client_env.artifacts_destination + "/")
    assert storage.endswith(f"/models/{logged.model_id}/artifacts")
    assert s3_has_mlmodel(client_env.s3, storage)
    assert require_model_dir(store, storage) == storage


def test_runs_uri_resolves_to_the_logged_model_not_the_run_artifacts(tracker, trained, client_env):
    destination = client_env.artifacts_destination
    expected = tracker.resolve_storage_uri(tracker.model_uri_for_run(trained.run_id), destination)

    resolved = tracker.resolve_storage_uri(f"runs:/{trained.run_id}/model", destination)

    assert resolved == expected


def test_registered_version_and_alias_resolve_to_the_same_directory(tracker, trained, client_env):
    destination = client_env.artifacts_destination
    model_uri = tracker.model_uri_for_run(trained.run_id)
    expected = tracker.resolve_storage_uri(model_uri, destination)
    name = unique("registered")

    version = tracker.register_version(name, model_uri, trained.run_id, {"modelci.env": "x"})
    tracker.set_alias(name, "b-feature-x", version)

    assert version == "1"
    assert tracker.resolve_storage_uri(f"models:/{name}/{version}", destination) == expected
    assert tracker.resolve_storage_uri(f"models:/{name}@b-feature-x", destination) == expected
    assert s3_has_mlmodel(client_env.s3, expected)


def test_unknown_alias_is_an_error_naming_it(tracker, trained, client_env):
    name = unique("registered")
    tracker.register_version(name, tracker.model_uri_for_run(trained.run_id), trained.run_id, {})
    with pytest.raises(ModelciError, match="alias 'nope'"):
        tracker.resolve_storage_uri(f"models:/{name}@nope", client_env.artifacts_destination)


def test_model_directory_without_mlmodel_is_refused(store, client_env):
    empty = f"{client_env.artifacts_destination}/{unique('nothing')}"
    store.put_bytes(f"{empty}/model.pkl", b"not an MLflow model")
    with pytest.raises(ModelciError, match=f"no MLmodel file in {empty}"):
        require_model_dir(store, empty)


def test_run_without_a_model_is_a_clear_error(tracker):
    run_id = tracker.start_run(unique("nomodel"), {}, "r")
    with pytest.raises(ModelciError, match=f"run {run_id} has no logged model"):
        tracker.model_uri_for_run(run_id)


def test_run_with_several_models_serves_the_newest_unless_one_is_named(tracker):
    import mlflow
    import numpy as np
    from sklearn.dummy import DummyClassifier

    run_id = tracker.start_run(unique("several"), {}, "r")
    model = DummyClassifier().fit(np.array([[0.0], [1.0]]), [0, 1])
    with mlflow.start_run(run_id=run_id):
        first = mlflow.sklearn.log_model(model, name="candidate", pip_requirements=["scikit-learn"])
        time.sleep(0.01)
        second = mlflow.sklearn.log_model(model, name="final", pip_requirements=["scikit-learn"])

    assert [m.name for m in tracker.logged_models(run_id)] == ["final", "candidate"]
    assert tracker.model_uri_for_run(run_id) == f"models:/{second.model_id}"
    assert tracker.model_uri_for_run(run_id, name="candidate") == f"models:/{first.model_id}"
    with pytest.raises(ModelciError, match="no logged model named 'other'"):
        tracker.model_uri_for_run(run_id, name="other")


def test_run_with_a_saved_model_directory_falls_back_to_runs_uri(tracker, client_env, tmp_path):
    import mlflow
    import numpy as np
    from sklearn.dummy import DummyClassifier

    run_id = tracker.start_run(unique("saved"), {}, "r")
    model = DummyClassifier().fit(np.array([[0.0], [1.0]]), [0, 1])
    mlflow.sklearn.save_model(model, tmp_path / "clf", pip_requirements=["scikit-learn"])
    mlflow.MlflowClient(tracker.tracking_uri).log_artifacts(run_id, str(tmp_path / "clf"), "clf")

    model_uri = tracker.model_uri_for_run(run_id)
    storage = tracker.resolve_storage_uri(model_uri, client_env.artifacts_destination)

    assert model_uri == f"runs:/{run_id}/clf"
    assert storage.endswith(f"/{run_id}/artifacts/clf")
    assert s3_has_mlmodel(client_env.s3, storage)


# -- production metrics ------------------------------------------------------------------------


def test_served_metrics_none_until_the_alias_exists(tracker, trained):
    name = unique("prod")
    assert tracker.served_metrics(name, "production") is None

    version = tracker.register_version(
        name, tracker.model_uri_for_run(trained.run_id), trained.run_id, {}
    )
    assert tracker.served_metrics(name, "production") is None

    tracker.set_alias(name, "production", version)
    assert tracker.served_metrics(name, "production") == trained.metrics


# -- find_run ----------------------------------------------------------------------------------


def make_run(tracker, experiment, *, branch, environment, gate, status="FINISHED") -> str:
    time.sleep(0.005)  # distinct start times, so "newest" is well defined
    tags = {TAG_BRANCH: branch, TAG_ENVIRONMENT: environment}
    if gate is not None:
        tags[TAG_GATE] = gate
    run_id = tracker.start_run(experiment, tags, run_name=f"{branch}-{gate}")
    if status != "RUNNING":
        tracker.end_run(run_id, status)
    return run_id


def test_find_run_prefers_pin_then_newest_passed_run_of_branch_and_environment(tracker):
    experiment = unique("find")
    env = "b-feature-x"
    older = make_run(tracker, experiment, branch="feature/x", environment=env, gate=GATE_PASSED)
    newer = make_run(tracker, experiment, branch="feature/x", environment=env, gate=GATE_PASSED)
    make_run(tracker, experiment, branch="feature/x", environment=env, gate=GATE_FAILED)
    make_run(tracker, experiment, branch="feature/y", environment=env, gate=GATE_PASSED)
    make_run(tracker, experiment, branch="feature/x", environment="b-other", gate=GATE_PASSED)
    make_run(
        tracker, experiment, branch="feature/x", environment=env, gate=GATE_PASSED, status="FAILED"
    )
    make_run(
        tracker, experiment, branch="feature/x", environment=env, gate=GATE_PASSED, status="RUNNING"
    )

    assert tracker.find_run(experiment, env, "feature/x").info.run_id == newer

    tracker.set_tags(older, {PIN_TAG: env})
    assert tracker.find_run(experiment, env, "feature/x").info.run_id == older


def test_a_pin_serves_even_a_failed_gate_run_and_only_its_environment(tracker):
    experiment = unique("pin")
    passed = make_run(tracker, experiment, branch="main", environment="staging", gate=GATE_PASSED)
    failed = make_run(tracker, experiment, branch="main", environment="staging", gate=GATE_FAILED)
    tracker.set_tags(failed, {PIN_TAG: "production"})

    assert tracker.find_run(experiment, "production", "main").info.run_id == failed
    assert tracker.find_run(experiment, "staging", "main").info.run_id == passed


def test_find_run_handles_branch_names_with_quotes(tracker):
    experiment = unique("quotes")
    branch = "fix/it's-broken"
    run_id = make_run(tracker, experiment, branch=branch, environment="b-fix", gate=GATE_PASSED)
    assert tracker.find_run(experiment, "b-fix", branch).info.run_id == run_id


def test_find_run_without_candidates_explains_tags_and_pinning(tracker):
    experiment = unique("none")
    make_run(tracker, experiment, branch="feature/x", environment="b-x", gate=GATE_FAILED)

    with pytest.raises(ModelciError) as error:
        tracker.find_run(experiment, "b-x", "feature/x")
    message = str(error.value)
    assert f"{PIN_TAG}=b-x" in message
    assert f"{TAG_BRANCH}=feature/x" in message and f"{TAG_GATE}={GATE_PASSED}" in message
    assert "MLflow UI" in message

    with pytest.raises(ModelciError, match="no run to serve"):
        tracker.find_run(unique("never-created"), "b-x", "feature/x")


# -- an unreachable server -----------------------------------------------------------------------


def test_unreachable_server_fails_in_bounded_time_with_what_to_check():
    before = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_HTTP_REQUEST")}
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind((HOST, 0))
        port = closed.getsockname()[1]
        tracker = Tracker(f"http://ci:tok3n-secret@{HOST}:{port}", attempts=3, backoff_seconds=0.2)
        started = time.monotonic()
        with pytest.raises(ModelciError) as error:
            tracker.start_run("anything", {}, "r")
    elapsed = time.monotonic() - started

    message = str(error.value)
    assert 0.5 < elapsed < 10  # two back-offs were waited, and nothing near MLflow's minutes
    assert f"{HOST}:{port}" in message
    assert "unreachable" in message and "3 attempts" in message
    assert "MLFLOW_TRACKING_URI" in message and "/health" in message
    assert "tok3n-secret" not in message
    # MLflow's retry settings were changed only during the calls, not for later processes.
    assert {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_HTTP_REQUEST")} == before


def test_empty_tracking_uri_is_a_configuration_error():
    with pytest.raises(ModelciError, match="MLFLOW_TRACKING_URI is not set"):
        Tracker("  ")
