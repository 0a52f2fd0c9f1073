"""Spark training: the config, the SparkApplication the training DAG submits (held against
the Spark Operator's CRD schema), and how the CI job starts local Spark."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import jsonschema
import pytest

from modelci.config.mlops import load_config
from modelci.config.naming import names_for
from modelci.config.settings import Pipeline
from modelci.config.types import Spark, SparkPart
from modelci.errors import ConfigError
from modelci.render.dags import MonitorTarget, render_dag
from modelci.render.spark import local_submit_args, main_file_uri, spark_application

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "churn-spark"
SCHEMA = json.loads(
    (ROOT / "tests/schemas/spark-operator/sparkapplication-v1beta2.strict.json").read_text()
)
CODE = "s3://mlops/scratch/ml-spark/b-x/code/0123456789abcdef.tar.gz"
ENV = "s3://mlops/scratch/envs/py3.11-0123456789abcdef0123/environment.tar.gz"


def example_model():
    return load_config(EXAMPLE / "mlops.yaml").model("churn-spark")


def application(**changes):
    kwargs = {
        "name": "churn-spark-b-x",
        "namespace": "ml-spark",
        "model": example_model(),
        "image": "registry.example.com/platform/runtime:1.0",
        "code_uri": CODE,
        "environment_uri": ENV,
        "env_vars": {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLFLOW_RUN_ID": "abc"},
        "s3_secret": "modelci-s3",
        "s3_endpoint": "http://seaweedfs:8333",
        "labels": {"modelci/model": "churn-spark"},
    }
    kwargs.update(changes)
    return spark_application(**kwargs)


def test_the_example_config_reads_as_a_spark_training() -> None:
    model = example_model()
    assert model.train.engine == "spark"
    assert model.train.spark == Spark(
        version="4.3.0",
        driver=SparkPart(cores=1, memory="2g"),
        executor=SparkPart(cores=2, memory="4g", instances=4),
        ci_master="local[2]",
        ci_args=("--rows", "4000"),
    )


def test_the_spark_application_validates_against_the_operator_crd() -> None:
    app = application()
    jsonschema.Draft7Validator(SCHEMA).validate(app)
    spec = app["spec"]
    assert spec["deps"]["archives"] == [
        "s3a://mlops/scratch/envs/py3.11-0123456789abcdef0123/environment.tar.gz#environment",
        "s3a://mlops/scratch/ml-spark/b-x/code/0123456789abcdef.tar.gz#code",
    ]
    assert spec["sparkConf"]["spark.pyspark.python"] == "./environment/bin/python"
    assert spec["mainApplicationFile"] == (
        "s3a://mlops/scratch/ml-spark/b-x/code/0123456789abcdef/train.py"
    )
    assert (spec["executor"]["instances"], spec["executor"]["cores"]) == (4, 2)
    assert spec["executor"]["memory"] == "4g" and spec["driver"]["memory"] == "2g"
    assert spec["arguments"] == ["--rows", "200000"]
    assert {"name": "MLFLOW_RUN_ID", "value": "abc"} in spec["driver"]["env"]
    assert spec["driver"]["envFrom"] == [{"secretRef": {"name": "modelci-s3"}}]


def test_a_field_the_operator_does_not_know_fails_the_schema() -> None:
    """The check has teeth: `spec.archives` (not the operator's field) is refused."""
    app = application()
    app["spec"]["archives"] = app["spec"]["deps"].pop("archives")
    with pytest.raises(jsonschema.ValidationError, match="archives"):
        jsonschema.Draft7Validator(SCHEMA).validate(app)


def test_the_training_dag_submits_the_application_with_airflow_rendering_none_of_it() -> None:
    model = example_model()
    (dag,) = model.batch.dags
    names = names_for("ml/spark", "feature/x", model.name)
    source = render_dag(
        names=names,
        model=model,
        dag=dag,
        pipeline=Pipeline("ml/spark", "", "feature/x", "main", "0" * 40, "1", "", "", "ds"),
        image="registry.example.com/platform/runtime:1.0",
        model_uri="s3://mlops/artifacts/1/models/m-1/artifacts",
        run_id="abc",
        code_uri=CODE,
        environment_uri=ENV,
        s3_secret="modelci-s3",
        tracking_uri="http://mlflow:5000",
        monitor=MonitorTarget("mlops.yaml", "", "main", "t"),
    )
    tree = ast.parse(source)
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
    }
    jsonschema.Draft7Validator(SCHEMA).validate(constants["SPARK_APPLICATION"])
    assert "SparkKubernetesOperator(" in source
    assert 'template_spec=literal({"spark": SPARK_APPLICATION})' in source
    assert "KubernetesPodOperator" not in source


def test_ci_starts_local_spark_with_the_driver_memory() -> None:
    spark = Spark(driver=SparkPart(memory="3g"), ci_master="local[*]")
    assert local_submit_args(spark) == (
        "--master local[*] --conf spark.driver.memory=3g pyspark-shell"
    )
    assert main_file_uri("s3://b/p/code/abc.tar.gz", "jobs/train.py") == (
        "s3://b/p/code/abc/jobs/train.py"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("engine: spark", "engine: flink", "expected one of python or spark"),
        ("engine: spark", "engine: python", "train.engine is not spark"),
        ("memory: 4g", "memory: 4.5g", "a Spark memory size from 512m to 2t: a whole number"),
        ("instances: 4", "instances: 0", "a whole number from 1 to 1000"),
        ('master: "local[2]"', 'master: "yarn"', 'a local Spark master, e.g. "local[2]"'),
        ('version: "4.3.0"', "version: 4.3", "the Spark version of the image"),
        ('["--rows", "200000"]', '["--day", "${ds}"]', "cannot use run values such as ${ds}"),
    ],
)
def test_spark_mistakes_name_the_field_and_the_fix(tmp_path, old, new, message) -> None:
    text = (EXAMPLE / "mlops.yaml").read_text()
    assert text.count(old) == 1
    (tmp_path / "train.py").write_text("")
    (tmp_path / "mlops.yaml").write_text(text.replace(old, new))
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "mlops.yaml")
    assert message in str(error.value)
    assert "models[0].train" in str(error.value)
