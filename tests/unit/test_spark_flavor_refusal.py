"""A Spark ML model (what mlflow.spark.log_model logs) loads only into a SparkSession, with
pyspark and Java; MLServer's mlflow runtime (online serving) and an inference DAG's pod have
neither, so every request would answer 500 and every scoring run would die. A config that
declares one (`flavor: spark`) with either is refused by `modelci validate` (exit 2, the file,
line, field, model and fix named, nothing written); a Spark model kept to its training DAG stays
valid; an MLmodel file is recognised by the flavors MLflow writes into it.

A model logged for real by mlflow.spark (Java and pyspark, tens of seconds) and refused by
`modelci resolve` is in tests/integration/test_resolve_refuses_spark_model.py; here the MLmodel
files are the text MLflow 3.17.2 wrote for a real model of each kind, copied verbatim."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelci.config.mlops import load_config
from modelci.errors import ModelciError
from modelci.render.spark import loads_with_spark, mlmodel_flavors, spark_model_problem

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "churn-spark"
# mlflow.spark.save_model of a pyspark.ml PipelineModel (VectorAssembler, LogisticRegression),
# MLflow 3.17.2 and pyspark 4.3.0.
SPARK_MLMODEL = b"""\
flavors:
  python_function:
    data: sparkml
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.spark
    python_version: 3.11.7
  spark:
    code: null
    model_class: pyspark.ml.pipeline.PipelineModel
    model_data: sparkml
    pyspark_version: 4.3.0
mlflow_version: 3.17.2
model_id: null
model_size_bytes: 5869
model_uuid: 0672c1c5c37443788c59f0eb67a76470
prompts: null
utc_time_created: '2026-12-06 09:47:41.949762'
"""
# mlflow.sklearn.save_model of a LogisticRegression, MLflow 3.17.2 and scikit-learn 1.9.1.
SKLEARN_MLMODEL = b"""\
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.skops
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.skops
    serialization_format: skops
    sklearn_version: 1.9.1
    skops_trusted_types: null
mlflow_version: 3.17.2
model_id: null
model_size_bytes: 9143
model_uuid: 2f2ac84c85dd473fbe5661759bc936b2
prompts: null
utc_time_created: '2026-12-06 09:51:42.648676'
"""
ONLINE = "    online:\n      enabled: true\n"
INFERENCE_DAG = (
    '        - kind: inference\n          entrypoint: score.py\n          schedule: "@daily"\n'
)


def spark_repo(tmp_path: Path, *, append: str) -> Path:
    """The churn-spark example with `append` added at the end of its model's config."""
    repo = tmp_path / "churn-spark"
    shutil.copytree(EXAMPLE, repo)
    (repo / "score.py").write_text("print('scores')\n")
    config = repo / "mlops.yaml"
    config.write_text(config.read_text() + append)
    return repo


def validate(repo: Path) -> subprocess.CompletedProcess[str]:
    """`modelci validate` in a process of its own, as the pipeline's first job runs it."""
    prefixes = ("CI_", "MLFLOW_", "AWS_", "MODELCI_", "GITLAB_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k != "CI"}
    return subprocess.run(
        [sys.executable, "-m", "modelci", "validate", "--config", "mlops.yaml"],
        cwd=repo,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def flavor_line(repo: Path) -> int:
    lines = (repo / "mlops.yaml").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if "flavor: spark" in line)


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("append", "loader"),
    [
        (ONLINE, "online serving (online.enabled, MLServer's mlflow runtime)"),
        (INFERENCE_DAG, "the pod of its inference DAG (batch.dags[1])"),
        (
            INFERENCE_DAG + ONLINE,
            "online serving (online.enabled, MLServer's mlflow runtime) and the pod of its "
            "inference DAG (batch.dags[1])",
        ),
    ],
    ids=["online", "inference-dag", "both"],
)
def test_validate_refuses_a_spark_model_that_would_be_served_or_scored_in_a_pod(
    tmp_path: Path, append: str, loader: str
) -> None:
    repo = spark_repo(tmp_path, append=append)
    before = snapshot(repo)

    result = validate(repo)

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    error = result.stderr
    assert "Traceback" not in error
    assert error.startswith(
        f"modelci validate: error: mlops.yaml:{flavor_line(repo)}:13: models[0].flavor: "
        "model churn-spark is a Spark ML model (flavor: spark): mlflow.pyfunc loads it only "
        "into a SparkSession, which needs pyspark and Java, and "
    )
    assert f"{loader} would load it without them" in error
    assert "every prediction request would answer 500" in error
    assert "mlflow.sklearn.log_model and set flavor: sklearn" in error  # the fix ...
    assert "remove the inference DAG" in error  # ... or the other one
    assert snapshot(repo) == before


def test_a_spark_model_kept_to_its_training_dag_is_valid(tmp_path: Path) -> None:
    """The example: trained by its DAG's SparkApplication, never served: nothing to refuse."""
    model = load_config(EXAMPLE / "mlops.yaml").model("churn-spark")
    assert model.flavor == "spark" and not model.online.enabled
    assert [dag.kind for dag in model.batch.dags] == ["training"]
    assert spark_model_problem(model, "flavor: spark") == ""
    result = validate(spark_repo(tmp_path, append=""))
    assert result.returncode == 0, result.stderr
    assert "valid (1 model(s): churn-spark)" in result.stdout


def test_a_spark_models_mlmodel_is_known_by_its_flavors() -> None:
    spark = mlmodel_flavors(SPARK_MLMODEL, "s3://b/m/MLmodel")
    sklearn = mlmodel_flavors(SKLEARN_MLMODEL, "s3://b/m/MLmodel")

    assert sorted(spark) == ["python_function", "spark"]
    assert loads_with_spark(spark)
    assert not loads_with_spark(sklearn)
    # Either half of what mlflow.spark writes is enough: a python_function whose loader is
    # mlflow.spark needs a SparkSession as much as the spark flavor does.
    assert loads_with_spark({"python_function": spark["python_function"]})
    assert loads_with_spark({"spark": spark["spark"]})
    assert not loads_with_spark(mlmodel_flavors(b"mlflow_version: 3.17.2\n", "s3://b/m/MLmodel"))


def test_an_mlmodel_that_is_not_yaml_is_named_not_a_traceback() -> None:
    with pytest.raises(ModelciError) as error:
        mlmodel_flavors(b"flavors: [python_function\n", "s3://bucket/models/m-1/MLmodel")

    message = str(error.value)
    assert message.startswith("s3://bucket/models/m-1/MLmodel cannot be read as YAML")
    assert "Nothing was deployed" in message
