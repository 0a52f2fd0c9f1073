"""The readers of a model's `train:` and `gate:`: how it is trained, and what it must score.

`train.spark` is read here with the training it belongs to; the Spark parts it shares with a
Spark inference DAG are in `shared_fields.py`. A mixin of the loader in `mlops.py`, apart so
that the rules of one group of sections, and their messages, read as one piece.
"""

from __future__ import annotations

from ruamel.yaml.comments import CommentedMap

from .checks import (
    as_bool,
    as_local_master,
    as_metric_name,
    as_non_negative_number,
    as_spark_version,
)
from .fields import section
from .shared_fields import SharedFields, as_engine
from .types import DEFAULT_RESOURCES, Gate, MetricThreshold, Spark, Train
from .walker import join_path

_TRAIN = section("models.train")
_SPARK = section("models.train.spark")
_SPARK_DRIVER = section("models.train.spark.driver")
_SPARK_EXECUTOR = section("models.train.spark.executor")
_SPARK_CI = section("models.train.spark.ci")
_GATE = section("models.gate")
_METRIC = section("models.gate.metrics")


class TrainingSections(SharedFields):
    """`train` (with `train.spark`) and `gate` of one model."""

    def train(self, model: CommentedMap, path: str) -> Train:
        path = join_path(path, "train")
        train = self.mapping(
            model,
            "train",
            path,
            _TRAIN.keys(),
            _TRAIN.required_keys(),
            is_required=_TRAIN.required,
        )
        engine = self.value(train, "engine", path, as_engine, "python")
        return Train(
            entrypoint=self.value(train, "entrypoint", path, self.entrypoint, None, required=True),
            args=self.strings(train, "args", path),
            resources=self.resources(train, path, DEFAULT_RESOURCES),
            engine=engine,
            spark=self.spark(train, path, engine),
        )

    def spark(self, train: CommentedMap | None, path: str, engine: str | None) -> Spark | None:
        path = join_path(path, "spark")
        spark = self.mapping(train, "spark", path, _SPARK.keys())
        if engine != "spark":
            if spark is not None:
                self.report(
                    train,
                    "spark",
                    path,
                    "is set but train.engine is not spark; add engine: spark, or remove it.",
                    at_key=True,
                )
            return None
        self.no_run_values(train, path)
        default = Spark()
        driver = self.mapping(spark, "driver", join_path(path, "driver"), _SPARK_DRIVER.keys())
        executor = self.mapping(
            spark, "executor", join_path(path, "executor"), _SPARK_EXECUTOR.keys()
        )
        ci = self.mapping(spark, "ci", join_path(path, "ci"), _SPARK_CI.keys())
        executors = self.spark_part(executor, join_path(path, "executor"), default.executor)
        self.spark_executors(executor, join_path(path, "executor"), executors)
        return Spark(
            version=self.value(spark, "version", path, as_spark_version, default.version),
            driver=self.spark_part(driver, join_path(path, "driver"), default.driver),
            executor=executors,
            ci_master=self.value(ci, "master", join_path(path, "ci"), as_local_master, "local[2]"),
            ci_args=self.strings(ci, "args", join_path(path, "ci")),
        )

    def gate(self, model: CommentedMap, path: str) -> Gate:
        path = join_path(path, "gate")
        gate = self.mapping(
            model,
            "gate",
            path,
            _GATE.keys(),
            _GATE.required_keys(),
            is_required=_GATE.required,
        )
        items = self.sequence(
            gate,
            "metrics",
            join_path(path, "metrics"),
            what="metrics",
            example="For example: metrics: [{name: accuracy, min: 0.8}]",
            at_least_one="metric",
        )
        metrics, seen = [], {}
        metric_items = self.mappings(
            items, f"{path}.metrics", _METRIC.keys(), _METRIC.required_keys()
        )
        for metric_path, metric in metric_items:
            metrics.append(self.threshold(metric, metric_path))
            self.unique(seen, metrics[-1].name, metric, "name", metric_path, "metric name")
        return Gate(
            metrics=tuple(metrics),
            compare_with_production=self.value(
                gate, "compare_with_production", path, as_bool, True
            ),
            tolerance=self.value(gate, "tolerance", path, as_non_negative_number, 0.0),
        )

    def threshold(self, metric: CommentedMap, path: str) -> MetricThreshold:
        name = self.value(metric, "name", path, as_metric_name, None, required=True)
        low, high = self.bounds(metric, path)
        return MetricThreshold(name=name, min=low, max=high)
