"""`batch.dags[].engine: spark`: an inference DAG scored by a SparkApplication. What validate
accepts (and the JSON Schema with it), and each mistake it refuses with the file, the field and
the fix: input format and location, the partition column, executor sizes a cluster can honour,
what a Spark inference DAG cannot have, and a monitoring that would read what it does not
write."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from modelci.cli import main
from modelci.config.fields import json_schema
from modelci.config.mlops import load_config
from modelci.config.types import SparkPart, SparkScoring
from modelci.errors import ConfigError

CONFIG = """\
version: 1
models:
  - name: churn-big
    flavor: sklearn
    train: {entrypoint: train.py}
    gate: {metrics: [{name: accuracy, min: 0.7}]}
    batch:
      dags:
        - kind: inference
          engine: spark
          schedule: "0 6 * * *"
          spark:
            version: "4.3.0"
            executor: {instances: 4, cores: 2, memory: 4g}
            input: s3://features/customers
            partition: ds
            output: scores
            prediction: churn_predicted
    monitoring:
      data: scores/ds=${ds}/scores.parquet
      reference: reference.csv
      features: [tenure_months]
      score: churn_predicted
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "mlops.yaml").write_text(text)
    return tmp_path / "mlops.yaml"


def replaced(old: str, new: str) -> str:
    assert CONFIG.count(old) == 1, old
    return CONFIG.replace(old, new)


def test_a_spark_inference_dag_reads_with_its_input_output_and_sizes(tmp_path: Path) -> None:
    model = load_config(write(tmp_path, CONFIG)).model("churn-big")

    dag = model.batch.dags[0]
    assert (dag.kind, dag.engine, dag.schedule) == ("inference", "spark", "0 6 * * *")
    assert dag.spark == SparkScoring(
        input="s3://features/customers",
        partition="ds",
        output="scores",
        prediction="churn_predicted",
        format="parquet",
        version="4.3.0",
        driver=SparkPart(cores=1, memory="2g"),
        executor=SparkPart(cores=2, memory="4g", instances=4),
    )
    assert dag.spark.day_file("2026-12-01") == "scores/ds=2026-12-01/scores.parquet"
    document = YAML(typ="safe").load(CONFIG)
    jsonschema.Draft7Validator(json_schema()).validate(document)  # no entrypoint needed


def test_a_spark_ml_model_may_be_scored_on_spark(tmp_path: Path) -> None:
    model = load_config(write(tmp_path, replaced("flavor: sklearn", "flavor: spark")))
    assert model.models[0].flavor == "spark"


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "input: s3://features/customers",
            "input: /data/customers",
            "spark.input",
            'the s3:// URI of the table\'s directory, e.g. "s3://features/customers"',
        ),
        (
            "input: s3://features/customers",
            "input: s3://features/customers/ds=${ds}",
            "spark.input",
            "leave the date out",
        ),
        (
            "partition: ds",
            "partition: day of run",
            "spark.partition",
            "a plain column name (letters, digits and _",
        ),
        (
            "partition: ds",
            "format: parquet",
            "spark",
            'required key "partition" is missing',
        ),
        (
            "prediction: churn_predicted",
            "prediction: churn_predicted\n            format: csv",
            "spark.format",
            "expected one of parquet",
        ),
        (
            "output: scores",
            "output: /scores",
            "spark.output",
            'a relative path such as "scores',
        ),
        (
            "output: scores",
            "output: scores/${ds}",
            "spark.output",
            "leave run values and = out",
        ),
        (
            "executor: {instances: 4, cores: 2, memory: 4g}",
            "executor: {instances: 1000, cores: 8, memory: 4g}",
            "spark.executor.instances",
            "for the executors of one scoring (more would hold a shared cluster",
        ),
        (
            "executor: {instances: 4, cores: 2, memory: 4g}",
            "executor: {instances: 4, cores: 2, memory: 4.5g}",
            "spark.executor.memory",
            "a Spark memory size from 512m to 2t",
        ),
        (
            "executor: {instances: 4, cores: 2, memory: 4g}",
            "executor: {instances: 4, cores: 9999, memory: 4g}",
            "spark.executor.cores",
            "a whole number from 1 to 512",
        ),
        (
            "        - kind: inference\n",
            "        - kind: training\n",
            "engine",
            "engine: spark is for inference DAGs only",
        ),
        (
            "          schedule:",
            "          entrypoint: score.py\n          schedule:",
            "entrypoint",
            "runs modelci's scoring program, not a script of the repository",
        ),
        (
            "          schedule:",
            "          resources: {memory: 8Gi}\n          schedule:",
            "resources",
            "is sized by spark.driver and spark.executor",
        ),
        (
            "          engine: spark\n",
            "          entrypoint: train.py\n",
            "spark",
            "is set but the DAG's engine is not spark",
        ),
        (
            "data: scores/ds=${ds}/scores.parquet",
            "data: scores/${ds}.csv",
            "monitoring.data",
            "Set data: scores/ds=${ds}/scores.parquet",
        ),
    ],
)
def test_spark_scoring_mistakes_name_the_field_and_the_fix(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, replaced(old, new)))
    text = str(error.value)
    assert message in text
    where = "models[0]." + field if field == "monitoring.data" else f"dags[0].{field}"
    assert where in text, text


def test_a_spark_inference_dag_without_its_spark_section_is_refused_by_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = CONFIG.index("          spark:\n")
    end = CONFIG.index("    monitoring:")
    path = write(tmp_path, CONFIG[:start] + CONFIG[end:])
    before = sorted(p.name for p in tmp_path.iterdir())

    code = main(["validate", "--config", str(path)])

    error = capsys.readouterr().err
    assert code == 2
    assert f"{path}:" in error and "models[0].batch.dags[0].spark" in error
    assert 'required key "spark" is missing' in error and "spark: {input: s3://" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_the_schema_still_wants_an_entrypoint_of_an_inference_dag_in_a_pod() -> None:
    document = YAML(typ="safe").load(CONFIG)
    del document["models"][0]["batch"]["dags"][0]["engine"]
    del document["models"][0]["batch"]["dags"][0]["spark"]
    errors = list(jsonschema.Draft7Validator(json_schema()).iter_errors(document))
    assert any("'entrypoint' is a required property" in e.message for e in errors), [
        json.dumps(e.message) for e in errors
    ]
