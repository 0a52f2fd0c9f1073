"""A Spark training DAG runs what its config names: its own `entrypoint` and `args` when
`batch.dags[]` gives them, else `train.entrypoint` and `train.args` (never the CI-only
`spark.ci.args`), as a training DAG in a pod does. Its args are submitted as written, so run
values (`${ds}`) in them are refused at validate; `$${` still means a literal `${`. Without the
run's environment archive a real deploy refuses to write the DAG, naming the fix."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from modelci.config.mlops import load_config
from modelci.config.naming import names_for
from modelci.config.settings import Pipeline
from modelci.config.types import Model
from modelci.errors import ConfigError, ModelciError
from modelci.render.dags import MonitorTarget, render_dag

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "churn-spark"
SCHEMA = json.loads(
    (ROOT / "tests/schemas/spark-operator/sparkapplication-v1beta2.strict.json").read_text()
)
CODE = "s3://mlops/scratch/ml-spark/b-x/code/0123456789abcdef.tar.gz"
ENV = "s3://mlops/scratch/envs/py3.11-0123456789abcdef0123/environment.tar.gz"
TRAINING_DAG = (
    "        - kind: training                    # the same entrypoint as a SparkApplication\n"
)


def spark_model(tmp_path: Path, dag_lines: str = "") -> Model:
    """The churn-spark example, its training DAG followed by `dag_lines`."""
    repo = tmp_path / "churn-spark"
    shutil.copytree(EXAMPLE, repo)
    (repo / "jobs").mkdir()
    (repo / "jobs" / "retrain.py").write_text("print('retrain')\n")
    config = repo / "mlops.yaml"
    text = config.read_text()
    assert text.count(TRAINING_DAG) == 1
    config.write_text(text.replace(TRAINING_DAG, "        - kind: training\n" + dag_lines))
    return load_config(config).model("churn-spark")


def training_dag_source(model: Model, environment_uri: str = ENV) -> str:
    (dag,) = model.batch.dags
    return render_dag(
        names=names_for("ml/spark", "feature/x", model.name),
        model=model,
        dag=dag,
        pipeline=Pipeline("ml/spark", "", "feature/x", "main", "0" * 40, "1", "", "", "ds"),
        image="registry.example.com/platform/runtime:1.0",
        model_uri="s3://mlops/artifacts/1/models/m-1/artifacts",
        run_id="abc",
        code_uri=CODE,
        environment_uri=environment_uri,
        s3_secret="modelci-s3",
        tracking_uri="http://mlflow:5000",
        monitor=MonitorTarget("mlops.yaml", "", "main", "t"),
    )


def application_spec(source: str) -> dict[str, Any]:
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
    }
    application = constants["SPARK_APPLICATION"]
    jsonschema.Draft7Validator(SCHEMA).validate(application)
    return application["spec"]


def test_the_application_runs_the_training_dags_own_entrypoint_and_args(tmp_path: Path) -> None:
    model = spark_model(
        tmp_path,
        "          entrypoint: jobs/retrain.py\n"
        '          args: ["--window", "90", "--pattern", "$${year}-*"]\n',
    )

    source = training_dag_source(model)

    spec = application_spec(source)
    assert spec["mainApplicationFile"] == (
        "s3a://mlops/scratch/ml-spark/b-x/code/0123456789abcdef/jobs/retrain.py"
    )
    # `$${` is a literal `${`, as `modelci train` and `modelci pod-run` pass it.
    assert spec["arguments"] == ["--window", "90", "--pattern", "${year}-*"]
    assert "training DAG running jobs/retrain.py" in source  # the header says what runs


def test_its_own_args_alone_go_with_the_train_entrypoint(tmp_path: Path) -> None:
    model = spark_model(tmp_path, '          args: ["--rows", "50000"]\n')

    spec = application_spec(training_dag_source(model))

    assert spec["mainApplicationFile"].endswith("/0123456789abcdef/train.py")
    assert spec["arguments"] == ["--rows", "50000"]


def test_without_its_own_the_dag_runs_train_entrypoint_and_args_not_the_ci_ones() -> None:
    model = load_config(EXAMPLE / "mlops.yaml").model("churn-spark")

    spec = application_spec(training_dag_source(model))

    assert spec["mainApplicationFile"].endswith("/0123456789abcdef/train.py")
    assert spec["arguments"] == ["--rows", "200000"]  # not spark.ci.args' --rows 4000


def test_run_values_in_a_spark_training_dags_args_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        spark_model(tmp_path, '          args: ["--day", "${ds}"]\n')

    (problem,) = error.value.problems
    assert problem.field == "models[0].batch.dags[0].args[1]"
    assert problem.message.startswith("found ")  # what was found, then why and the fix
    assert "${ds}" in problem.message.split(";")[0]
    assert "a Spark training's arguments cannot use run values such as ${ds}" in problem.message
    assert problem.message.endswith("Remove it.")


def test_a_deploy_without_the_runs_environment_archive_is_refused_with_the_fix() -> None:
    model = load_config(EXAMPLE / "mlops.yaml").model("churn-spark")

    with pytest.raises(ModelciError) as error:
        training_dag_source(model, environment_uri="")

    message = str(error.value)
    assert message.startswith("churn-spark: its training DAG runs as a SparkApplication")
    assert "no modelci.env_archive tag" in message
    assert "Set MODELCI_SCRATCH_URI" in message


def test_resources_on_a_spark_training_dag_are_refused_for_the_spark_sizes(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as refused:
        spark_model(tmp_path, "          resources: {cpu: '4', memory: 8Gi}\n")

    message = str(refused.value)
    assert "models[0].batch.dags[0].resources: a Spark training DAG's pods are sized by" in message
    assert "train.spark.driver and train.spark.executor" in message
