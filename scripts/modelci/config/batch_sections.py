"""The readers of a model's `batch:`: its Airflow DAGs, and the Spark scoring of an inference DAG.

A DAG runs an entrypoint of the repository (a training DAG falls back to `train:`'s), or, with
`engine: spark`, modelci's own Spark scoring program, whose input and output `spark:` names.
The monitoring DAG is not read here: the `monitoring:` section generates it
(`monitoring_sections.py`). A mixin of the loader in `mlops.py`, apart so that the rules of one
group of sections, and their messages, read as one piece.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap

from .checks import (
    MAX_RETRIES,
    as_int_between,
    as_one_of,
    as_relative_path,
    as_s3_table_uri,
    as_schedule,
    as_spark_column,
    as_spark_version,
    wrong,
)
from .fields import DAG_KINDS, SPARK_FORMATS, section
from .shared_fields import SharedFields, as_engine
from .types import (
    DEFAULT_RESOURCES,
    SPARK_SCORING_PROGRAM,
    Batch,
    Dag,
    Resources,
    SparkScoring,
    Train,
)
from .walker import EXAMPLES, join_path

_BATCH = section("models.batch")
_DAG = section("models.batch.dags")
_SCORING_SPARK = section("models.batch.dags.spark")
_SCORING_DRIVER = section("models.batch.dags.spark.driver")
_SCORING_EXECUTOR = section("models.batch.dags.spark.executor")

_as_dag_kind = as_one_of(DAG_KINDS)
_as_spark_format = as_one_of(SPARK_FORMATS)


class BatchSections(SharedFields):
    """`batch` of one model: its DAGs, each run by an entrypoint or by Spark scoring."""

    def batch(self, model: CommentedMap, path: str, train: Train) -> Batch:
        path = join_path(path, "batch")
        batch = self.mapping(model, "batch", path, _BATCH.keys())
        resources = self.resources(batch, path, DEFAULT_RESOURCES)
        items = self.sequence(
            batch,
            "dags",
            join_path(path, "dags"),
            what="DAGs",
            example="See docs/data-scientists/mlops-yaml.md.",
        )
        dags, seen = [], {}
        for dag_path, dag in self.mappings(
            items, f"{path}.dags", _DAG.keys(), _DAG.required_keys()
        ):
            dags.append(self.dag(dag, dag_path, train, resources))
            self.unique(seen, dags[-1].kind, dag, "kind", dag_path, "DAG kind")
        return Batch(dags=tuple(dags))

    def dag(self, dag: CommentedMap, path: str, train: Train, resources: Resources) -> Dag:
        kind = self.value(dag, "kind", path, _as_dag_kind, None, required=True)
        engine = self.value(dag, "engine", path, as_engine, "python")
        if engine == "spark":
            return self.spark_scoring_dag(dag, path, kind)
        self.spark_without_engine(dag, path)
        entrypoint: str | None = None
        args: tuple[str, ...] = self.strings(dag, "args", path)
        if "entrypoint" in dag:
            required = kind != "training"  # only a training DAG falls back to train's
            entrypoint = self.value(
                dag, "entrypoint", path, self.entrypoint, None, required=required
            )
        elif kind == "training":
            entrypoint = train.entrypoint
            args = args if "args" in dag else train.args
        elif kind is not None:
            self.report_at_node(
                dag,
                join_path(path, "entrypoint"),
                f'required key "entrypoint" is missing (only a training DAG defaults to '
                f"train.entrypoint); add it, e.g. entrypoint: {EXAMPLES['entrypoint']}",
            )
        if kind == "training" and train.engine == "spark":  # its SparkApplication runs them
            self.no_run_values(dag, path)
            if "resources" in dag:
                self.report(
                    dag,
                    "resources",
                    join_path(path, "resources"),
                    "a Spark training DAG's pods are sized by train.spark.driver and "
                    "train.spark.executor, so these resources would change nothing. Remove "
                    "them and set cores and memory there.",
                    at_key=True,
                )
        return Dag(
            kind=kind,
            entrypoint=entrypoint,
            args=args,
            schedule=self.value(dag, "schedule", path, as_schedule, None),
            retries=self.value(dag, "retries", path, as_int_between(0, MAX_RETRIES), 1),
            resources=self.resources(dag, path, resources),
        )

    def spark_without_engine(self, dag: CommentedMap, path: str) -> None:
        if "spark" in dag:
            self.report(
                dag,
                "spark",
                join_path(path, "spark"),
                "is set but the DAG's engine is not spark; add engine: spark (an inference DAG "
                "scored by a SparkApplication), or remove it.",
                at_key=True,
            )

    def spark_scoring_dag(self, dag: CommentedMap, path: str, kind: str | None) -> Dag:
        """An inference DAG scored by a SparkApplication running modelci's scoring program
        (jobs/spark_score.py): it has no entrypoint, args or pod resources of its own."""
        if kind is not None and kind != "inference":
            self.report(
                dag,
                "engine",
                join_path(path, "engine"),
                f"engine: spark is for inference DAGs only; this one is of kind {kind}. A "
                "training on Spark is train.engine: spark; remove engine here.",
            )
        for key, why in (
            ("entrypoint", "runs modelci's scoring program, not a script of the repository"),
            ("args", "takes its settings from spark: (input, partition, output, prediction)"),
            ("resources", "is sized by spark.driver and spark.executor"),
        ):
            if key in dag:
                self.report(
                    dag,
                    key,
                    join_path(path, key),
                    f"a Spark inference DAG {why}, so {key} would change nothing. Remove it.",
                    at_key=True,
                )
        return Dag(
            kind=kind,
            entrypoint=SPARK_SCORING_PROGRAM,
            schedule=self.value(dag, "schedule", path, as_schedule, None),
            retries=self.value(dag, "retries", path, as_int_between(0, MAX_RETRIES), 1),
            engine="spark",
            spark=self.spark_scoring(dag, join_path(path, "spark")),
        )

    def spark_scoring(self, dag: CommentedMap, path: str) -> SparkScoring | None:
        required = _SCORING_SPARK.required_keys()
        spark = self.mapping(dag, "spark", path, _SCORING_SPARK.keys(), required)
        if spark is None:
            if "spark" not in dag:
                self.report_at_node(
                    dag,
                    path,
                    'required key "spark" is missing (a Spark inference DAG reads its input and '
                    "writes its predictions as it says); add it, e.g. spark: {input: "
                    "s3://features/customers, partition: ds, output: scores, prediction: score}",
                )
            return None
        default = SparkScoring(input="", partition="", output="", prediction="")
        driver = self.mapping(spark, "driver", join_path(path, "driver"), _SCORING_DRIVER.keys())
        executor = self.mapping(
            spark, "executor", join_path(path, "executor"), _SCORING_EXECUTOR.keys()
        )
        executors = self.spark_part(executor, join_path(path, "executor"), default.executor)
        self.spark_executors(executor, join_path(path, "executor"), executors, "scoring")
        values = {
            "input": self.value(spark, "input", path, as_s3_table_uri, None, required=True),
            "partition": self.value(spark, "partition", path, as_spark_column, None, required=True),
            "output": self.value(spark, "output", path, self.spark_output, None, required=True),
            "prediction": self.value(
                spark, "prediction", path, as_spark_column, None, required=True
            ),
            "format": self.value(spark, "format", path, _as_spark_format, default.format),
            "version": self.value(spark, "version", path, as_spark_version, default.version),
        }
        if None in values.values() or None in (executors.cores, executors.memory):
            return None  # reported already
        return SparkScoring(
            **values,
            driver=self.spark_part(driver, join_path(path, "driver"), default.driver),
            executor=executors,
        )

    @staticmethod
    def spark_output(value: Any) -> str:
        text = as_relative_path(value)
        if "${" in text.replace("$${", "") or "=" in text:
            raise wrong(
                value,
                'a relative path such as "scores"',
                "Each run writes the partition <partition>=<date> below it itself: leave run "
                "values and = out.",
            )
        return text.rstrip("/")
