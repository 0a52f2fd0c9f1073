"""A Spark inference DAG as a pipeline writes it: its SparkApplication passes the Spark
Operator's CRD schema, runs modelci's scoring program (staged beside the code archive in real
S3, as resolve does) in the environment archive of the resolved run, and a real Airflow
renders nothing of it but the day, which it adds to the arguments; `modelci render` prints it
with the DAG."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from modelci.config.mlops import load_config
from modelci.config.naming import names_for
from modelci.config.settings import Pipeline
from modelci.lifecycle.deploy import put_spark_main_files
from modelci.render.dags import MonitorTarget, render_dag
from modelci.render.spark import SCORING_PROGRAM, s3a, scoring_main_file_uri
from modelci.systems.s3 import S3Store
from tests.harness.airflow import parse_dag_folder

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads(
    (ROOT / "tests/schemas/spark-operator/sparkapplication-v1beta2.strict.json").read_text()
)
PROJECT, BRANCH, MODEL = "ml/churn", "feature/big", "churn-big"
# Text that Airflow's Jinja would evaluate, in the one free-text setting that reaches the
# application: it must arrive as written.
OUTPUT = "scores/{{ var.value.secret }}"
CONFIG = f"""\
version: 1
models:
  - name: {MODEL}
    flavor: sklearn
    train: {{entrypoint: train.py}}
    gate: {{metrics: [{{name: accuracy, min: 0.7}}]}}
    batch:
      dags:
        - kind: inference
          engine: spark
          schedule: "0 6 * * *"
          retries: 2
          spark:
            version: "4.3.0"
            driver: {{cores: 1, memory: 2g}}
            executor: {{instances: 8, cores: 2, memory: 6g}}
            input: s3://features/customers
            partition: ds
            output: "{OUTPUT}"
            prediction: churn_predicted
"""
ENVIRONMENT = "s3://mlops/scratch/envs/ml-churn/py3.11-0123456789abcdef0123/environment.tar.gz"
MODEL_URI = "s3://mlops/artifacts/1/models/m-1/artifacts"
DATA = "s3://mlops/scratch/branches/ml-churn/b-feature-big/data/churn-big/"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text("print('train')\n")
    (tmp_path / "mlops.yaml").write_text(CONFIG)
    return tmp_path


def constants(source: str) -> dict[str, Any]:
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
    }


def scoring_dag(repo: Path, code_uri: str) -> str:
    model = load_config(repo / "mlops.yaml").model(MODEL)
    (dag,) = model.batch.dags
    return render_dag(
        names=names_for(PROJECT, BRANCH, MODEL),
        model=model,
        dag=dag,
        pipeline=Pipeline(PROJECT, "", BRANCH, "main", "0" * 40, "1", "", "", "ds"),
        image="registry.example.com/platform/runtime:1.0",
        model_uri=MODEL_URI,
        run_id="abc",
        code_uri=code_uri,
        environment_uri=ENVIRONMENT,  # what resolve read from the run's modelci.env_archive
        s3_secret="modelci-s3",
        s3_endpoint="http://seaweedfs:8333",
        tracking_uri="http://mlflow:5000",
        data_uri=DATA,
        monitor=MonitorTarget("mlops.yaml", "", "main", "t"),
    )


def test_the_scoring_application_runs_the_staged_program_in_the_runs_environment(
    repo: Path, s3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    store = S3Store(s3.endpoint_url, s3.region)
    code = f"s3://{s3.bucket}/tests/{uuid.uuid4().hex}/code/{'0' * 40}.tar.gz"
    model = load_config(repo / "mlops.yaml").model(MODEL)

    put_spark_main_files(store, [model], {MODEL: code})
    source = scoring_dag(repo, code)

    assert store.get_bytes(scoring_main_file_uri(code)) == SCORING_PROGRAM.read_bytes()
    written = constants(source)
    application = written["SPARK_APPLICATION"]
    jsonschema.Draft7Validator(SCHEMA).validate(application)
    spec = application["spec"]
    assert spec["mainApplicationFile"] == s3a(scoring_main_file_uri(code))
    assert spec["deps"]["archives"] == [s3a(ENVIRONMENT) + "#environment"]  # no code archive
    assert spec["sparkConf"]["spark.pyspark.python"] == "./environment/bin/python"
    assert spec["sparkVersion"] == "4.3.0"
    assert (spec["executor"]["instances"], spec["executor"]["memory"]) == (8, "6g")
    assert spec["arguments"] == [
        "--model-uri", MODEL_URI,
        "--input", "s3a://features/customers",
        "--format", "parquet",
        "--partition", "ds",
        "--output", s3a(DATA) + OUTPUT,
        "--prediction", "churn_predicted",
    ]  # fmt: skip
    assert written["RUN_DATE_ARGUMENTS"] == ["--date", "{{ ds | default('') }}"]

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "inference.py").write_text(source)
    parsed = parse_dag_folder(folder, tmp_path / "parsed.json")
    assert parsed["import_errors"] == {}
    dag_id = names_for(PROJECT, BRANCH, MODEL).dag_id("inference")
    task = parsed["dags"][dag_id]["tasks"]["inference"]
    assert task["operator"] == "SparkKubernetesOperator" and task["retries"] == 2
    # As the task submits it: the application as written, the run's day added, no Jinja.
    submitted = task["spark_application"]
    assert submitted["spec"]["arguments"] == [*spec["arguments"], "--date", "2024-05-07"]
    assert {**submitted, "spec": {**submitted["spec"], "arguments": spec["arguments"]}} == (
        application
    )
    assert "LEAKED-VIA-JINJA" not in json.dumps(submitted)


def test_render_prints_the_scoring_application_with_its_dag(repo: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelci", "render", "--config", "mlops.yaml",
         "--project", PROJECT, "--branch", BRANCH],
        cwd=repo, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(repo)},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    path = names_for(PROJECT, BRANCH, MODEL).dag_path("inference")
    source = result.stdout.split(f"==> {path} <==\n", 1)[1]
    application = constants(source)["SPARK_APPLICATION"]
    jsonschema.Draft7Validator(SCHEMA).validate(application)
    (archive,) = application["spec"]["deps"]["archives"]
    assert "environment-archive-of-the-run-chosen-by-resolve" in archive  # a marked placeholder
    assert "modelci-spark-score-" in application["spec"]["mainApplicationFile"]
