"""The bulk reads the fleet page is built from, against the real systems: MLflow's searches
page through everything (pages made small here), S3 lists sizes in one listing, a shared
repo's files come from one fetch of its trees and no file content."""

from __future__ import annotations

import uuid
from pathlib import Path

import git
import pytest
from mlflow import MlflowClient

from modelci.errors import ModelciError
from modelci.systems import mlflow_search
from modelci.systems.gitrepo import RemoteRepo
from modelci.systems.mlflow_search import MlflowSearch
from modelci.systems.s3 import S3Store
from tests.e2e.test_faults import closed_port
from tests.harness.gitremotes import make_bare_repo
from tests.integration.test_s3 import aws_env  # noqa: F401 (a fixture)


def test_mlflow_searches_page_through_runs_and_versions(
    mlflow_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mlflow_search, "RUNS_PAGE", 2)
    monkeypatch.setattr(mlflow_search, "VERSIONS_PAGE", 2)
    client = MlflowClient(mlflow_server.tracking_uri)
    name = f"fleet-sources/{uuid.uuid4().hex[:8]}/churn"
    experiment = client.create_experiment(name)
    runs = []
    for number in range(5):
        run = client.create_run(experiment, tags={"modelci.kind": "monitoring"})
        client.log_metric(run.info.run_id, "psi.tenure", number / 10)
        client.set_terminated(run.info.run_id)
        runs.append(run.info.run_id)
    other = client.create_run(experiment, tags={"modelci.kind": "training"}).info.run_id
    registered = f"fleet-sources-{uuid.uuid4().hex[:8]}.churn"
    client.create_registered_model(registered)
    for run_id in runs[:3]:
        client.create_model_version(registered, f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(registered, "production", "2")

    search = MlflowSearch(mlflow_server.tracking_uri)
    found = search.runs([experiment], "tags.`modelci.kind` = 'monitoring'")
    assert [run.info.run_id for run in found] == runs  # oldest first, every page
    assert [run.data.metrics["psi.tenure"] for run in found] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert search.requests == 3  # pages of two
    versions = search.model_versions(f"name = '{registered}'")
    assert sorted(v.version for v in versions) == ["1", "2", "3"]
    assert {v.version: v.run_id for v in versions} == dict(zip("123", runs, strict=False))
    assert next(m for m in search.registered_models() if m.name == registered).aliases == {
        "production": "2"
    }
    by_id = search.runs_by_id([experiment], [runs[1], other])
    assert {run.info.run_id for run in by_id} == {runs[1], other}
    assert name in {e.name for e in search.experiments()}

    dead = MlflowSearch(f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(mlflow_search, "BACKOFF_SECONDS", 0.01)
    with pytest.raises(ModelciError, match=r"MLflow at http://127\.0\.0\.1:\d+: could not"):
        dead.experiments()


@pytest.mark.usefixtures("aws_env")
def test_s3_lists_sizes_and_times_in_one_listing(s3) -> None:
    prefix = f"s3://{s3.bucket}/fleet-sources/{uuid.uuid4().hex[:8]}"
    client = s3.client()
    for name, size in (("a/one", 10), ("a/two", 20), ("b/three", 30)):
        key = f"{prefix}/{name}".removeprefix(f"s3://{s3.bucket}/")
        client.put_object(Bucket=s3.bucket, Key=key, Body=b"x" * size)
    store = S3Store(s3.endpoint_url, s3.region)

    found, requests = store.list_sizes(prefix)
    assert {uri.removeprefix(prefix): size for uri, (size, _) in found.items()} == {
        "/a/one": 10, "/a/two": 20, "/b/three": 30,
    }  # fmt: skip
    assert requests == 1


def test_a_repo_lists_its_files_from_its_trees_alone(tmp_path: Path) -> None:
    files = {
        f"dags/p-{p}/b-env-{e}/churn__inference.py": f"# {p} {e}\n"
        for p in range(3)
        for e in range(20)
    }
    bare = make_bare_repo(tmp_path / "dags.git", files)
    git.Repo(bare).git.config("uploadpack.allowFilter", "true")  # as GitLab serves it
    repo = RemoteRepo(bare.as_uri(), "main")

    assert repo.list_files("dags") == sorted(files)
    assert repo.last_local_objects is not None and repo.last_local_objects.blobs == 0
    assert repo.list_files("nothing-here") == []
