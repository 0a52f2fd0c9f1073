"""The main file of a Spark training DAG, staged beside the code archive in real S3 (SeaweedFS)
as resolve and a stand's deploy do: the DAG's own entrypoint when its config names one, which
is the file its SparkApplication's `mainApplicationFile` names."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import git
import pytest

from modelci.config.mlops import load_config
from modelci.lifecycle.deploy import put_spark_main_files
from modelci.render.spark import main_file_uri, s3a, spark_application
from modelci.systems.s3 import S3Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "churn-spark"
TRAINING_DAG = (
    "        - kind: training                    # the same entrypoint as a SparkApplication\n"
)
RETRAIN = b"print('retrain on the last 90 days')\n"


@pytest.fixture
def store(s3, monkeypatch, tmp_path) -> S3Store:
    """An S3Store with the keys in the environment, as in a CI job."""
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    return S3Store(s3.endpoint_url, s3.region)


def test_the_training_dags_own_entrypoint_is_staged_as_the_main_file(
    store: S3Store, s3, tmp_path: Path
) -> None:
    repo = tmp_path / "churn-spark"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "jobs").mkdir()
    (repo / "jobs" / "retrain.py").write_bytes(RETRAIN)
    config = repo / "mlops.yaml"
    own = "        - kind: training\n          entrypoint: jobs/retrain.py\n"
    config.write_text(config.read_text().replace(TRAINING_DAG, own))
    checkout = git.Repo.init(repo, initial_branch="main")
    checkout.git.add(A=True)
    author = git.Actor("Data Scientist", "ds@example.com")
    commit = checkout.index.commit("model", author=author, committer=author).hexsha
    model = load_config(config).model("churn-spark")
    code = f"s3://{s3.bucket}/tests/{uuid.uuid4().hex}/code/{commit}.tar.gz"
    store.put_bytes(code, checkout.git.archive("--format=tar.gz", commit, stdout_as_string=False))

    put_spark_main_files(store, [model], {model.name: code})

    staged = main_file_uri(code, "jobs/retrain.py")
    assert store.get_bytes(staged) == RETRAIN
    assert not store.exists(main_file_uri(code, "train.py"))  # not the train entrypoint
    application = spark_application(
        name="churn-spark-b-main",
        namespace="ml",
        model=model,
        image="registry.example.com/platform/runtime:1.0",
        code_uri=code,
        environment_uri=f"s3://{s3.bucket}/envs/py3.11-0123/environment.tar.gz",
        env_vars={},
        s3_secret="modelci-s3",
        s3_endpoint=s3.endpoint_url,
        labels={},
    )
    assert application["spec"]["mainApplicationFile"] == s3a(staged)
