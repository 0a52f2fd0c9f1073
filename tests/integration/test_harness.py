"""The harness's services really work the way later tests and the product rely on."""

from pathlib import Path

import git
import pytest
from botocore.exceptions import ClientError

from tests.harness.gitremotes import AUTHOR, GitRemotes, make_bare_repo
from tests.harness.mlflowserver import MlflowServer
from tests.harness.s3server import S3Server


def test_s3_stores_and_returns_objects(s3: S3Server) -> None:
    client = s3.client()
    client.head_bucket(Bucket=s3.bucket)
    client.put_object(Bucket=s3.bucket, Key="harness/round-trip.txt", Body=b"payload \x00\xff")

    body = client.get_object(Bucket=s3.bucket, Key="harness/round-trip.txt")["Body"].read()

    assert s3.bucket == "mlops"
    assert body == b"payload \x00\xff"


@pytest.mark.parametrize("wrong", ["secret", "access key"])
def test_s3_refuses_wrong_credentials(s3: S3Server, wrong: str) -> None:
    if wrong == "secret":
        intruder = s3.client(secret_key=s3.secret_key + "x")
    else:
        intruder = s3.client(access_key="AKNOTAKNOWNKEY000000")
    key = f"harness/intruder-{wrong.replace(' ', '-')}.txt"

    with pytest.raises(ClientError) as refused:
        intruder.put_object(Bucket=s3.bucket, Key=key, Body=b"should not land")

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as missing:
        s3.client().head_object(Bucket=s3.bucket, Key=key)
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def _s3_location(mlflow_server: MlflowServer, artifact_uri: str) -> tuple[str, str]:
    """Bucket and key behind a proxied ``mlflow-artifacts:`` URI."""
    relative = artifact_uri.removeprefix("mlflow-artifacts:").lstrip("/")
    bucket, _, prefix = mlflow_server.artifacts_destination.removeprefix("s3://").partition("/")
    return bucket, f"{prefix}/{relative}"


def test_mlflow_proxies_artifacts_into_the_bucket(
    mlflow_server: MlflowServer, s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in mlflow_server.env.items():
        monkeypatch.setenv(name, value)
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment_id = client.create_experiment(f"harness-{tmp_path.name}")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "accuracy", 0.93)
    artifact = tmp_path / "hello.txt"
    artifact.write_text("hello from the harness\n")
    client.log_artifact(run.info.run_id, str(artifact), artifact_path="notes")
    client.set_terminated(run.info.run_id)

    finished = client.get_run(run.info.run_id)
    assert finished.data.metrics == {"accuracy": 0.93}
    assert finished.info.artifact_uri.startswith("mlflow-artifacts:/")
    bucket, key = _s3_location(mlflow_server, f"{finished.info.artifact_uri}/notes/hello.txt")
    assert bucket == s3.bucket
    assert key == f"mlflow-artifacts/{experiment_id}/{run.info.run_id}/artifacts/notes/hello.txt"
    stored = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == b"hello from the harness\n"


def _only_commit_on_main(bare: Path) -> git.Commit:
    repo = git.Repo(bare)
    assert repo.bare
    assert repo.head.reference.name == "main"
    commits = list(repo.iter_commits("main"))
    assert len(commits) == 1
    return commits[0]


def test_git_remotes_start_with_a_readme_on_main(git_remotes: GitRemotes) -> None:
    assert git_remotes.dags != git_remotes.gitops
    for bare in (git_remotes.dags, git_remotes.gitops):
        commit = _only_commit_on_main(bare)
        assert [blob.path for blob in commit.tree.traverse()] == ["README.md"]


def test_git_remote_accepts_a_pushed_commit(git_remotes: GitRemotes, tmp_path: Path) -> None:
    clone = git.Repo.clone_from(str(git_remotes.dags), tmp_path / "clone")
    assert (tmp_path / "clone" / "README.md").is_file()
    dag = tmp_path / "clone" / "dags" / "demo.py"
    dag.parent.mkdir()
    dag.write_text("print('dag')\n")
    clone.index.add(["dags/demo.py"])
    pushed = clone.index.commit("Add a DAG", author=AUTHOR, committer=AUTHOR)

    clone.remote("origin").push("main").raise_if_error()

    remote_main = git.Repo(git_remotes.dags).commit("main")
    assert remote_main.hexsha == pushed.hexsha
    assert (remote_main.tree / "dags" / "demo.py").data_stream.read() == b"print('dag')\n"


def test_make_bare_repo_commits_the_given_files_on_the_given_branch(tmp_path: Path) -> None:
    files = {"values.yaml": "replicas: 1\n", "apps/demo/config.json": "{}\n"}

    bare = make_bare_repo(tmp_path / "custom.git", files, branch="stands")

    repo = git.Repo(bare)
    assert repo.head.reference.name == "stands"
    tree = repo.commit("stands").tree
    assert {
        blob.path: blob.data_stream.read().decode()
        for blob in tree.traverse()
        if blob.type == "blob"
    } == files


def test_everything_outside_unit_is_marked_slow(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("slow") is not None
