"""The readers of a model's `monitoring:`: the checks of the scored data, and retraining.

The section names the data, the columns and the limits the monitoring DAG checks, the ground
truth to score against and when to retrain; reading it also adds that DAG to the model's batch
DAGs, and checks that the data is what a Spark inference DAG writes. A mixin of the loader in
`mlops.py`, apart so that the rules of one group of sections, and their messages, read as one
piece.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap

from .checks import (
    Invalid,
    as_bool,
    as_column_name,
    as_non_negative_number,
    as_number,
    as_one_of,
    as_relative_path,
    as_schedule,
    key_text,
    wrong,
)
from .fields import MONITOR_METRICS, section
from .shared_fields import SharedFields
from .types import DEFAULT_RESOURCES, Batch, Dag, GroundTruth, Monitoring, Retrain
from .walker import join_path

# Ground-truth metrics that are errors (lower is better): bounded by `max`; the others
# (accuracy: higher is better) by `min`. A bound on the other side fails the better models.
LOWER_IS_BETTER = frozenset({"mae", "rmse"})

_MONITORING = section("models.monitoring")
_GROUND_TRUTH = section("models.monitoring.ground_truth")
_RETRAIN = section("models.monitoring.retrain")

_as_monitor_metric = as_one_of(MONITOR_METRICS)


class MonitoringSections(SharedFields):
    """`monitoring` of one model, and the monitoring DAG it adds to the model's batch DAGs."""

    def monitoring(self, model: CommentedMap, path: str) -> Monitoring | None:
        path = join_path(path, "monitoring")
        required = _MONITORING.required_keys()
        monitoring = self.mapping(model, "monitoring", path, _MONITORING.keys(), required)
        if monitoring is None:
            return None
        score = self.value(monitoring, "score", path, as_column_name, None)
        features = self.columns(monitoring, path)
        if score is not None and score in features:
            self.report(
                monitoring,
                "score",
                join_path(path, "score"),
                f'"{score}" is also in monitoring.features; the score is checked like a feature '
                "already. Remove it from features.",
            )
        return Monitoring(
            data=self.value(monitoring, "data", path, as_relative_path, None, required=True),
            reference=self.value(
                monitoring, "reference", path, as_relative_path, None, required=True
            ),
            features=features,
            score=score,
            ranges=self.ranges(monitoring, path),
            max_psi=self.value(monitoring, "max_psi", path, as_non_negative_number, 0.2),
            max_null_share=self.value(monitoring, "max_null_share", path, _as_share, 0.0),
            max_out_of_range=self.value(monitoring, "max_out_of_range", path, _as_share, 0.0),
            ground_truth=self.ground_truth(monitoring, path, score),
            schedule=self.value(monitoring, "schedule", path, as_schedule, "@daily"),
            resources=self.resources(monitoring, path, DEFAULT_RESOURCES),
            retrain=self.retrain(monitoring, path),
        )

    def columns(self, monitoring: CommentedMap, path: str) -> tuple[str, ...]:
        field = join_path(path, "features")
        items = self.sequence(
            monitoring,
            "features",
            field,
            what="column names",
            example="For example: features: [tenure_months, monthly_charges]",
            at_least_one="column",
        )
        names: list[str] = []
        seen: dict[Any, int | None] = {}
        for index, _ in enumerate(items):
            name = self.checked(
                items, index, f"{field}[{index}]", as_column_name, "Write a column name."
            )
            self.unique(seen, name, items, index, field, "feature column", "Remove one.")
            if name is not None:
                names.append(name)
        return tuple(names)

    def ranges(self, monitoring: CommentedMap, path: str) -> tuple[tuple[str, float, float], ...]:
        field = join_path(path, "ranges")
        ranges = monitoring.get("ranges")
        if ranges is None:
            return ()
        if not isinstance(ranges, CommentedMap):
            example = "For example: ranges: {tenure_months: [0, 120]}"
            self.report(monitoring, "ranges", field, str(wrong(ranges, "a mapping", example)))
            return ()
        found = []
        for name in ranges:
            try:
                column = as_column_name(name)
            except Invalid as invalid:
                self.report(
                    ranges, name, join_path(field, key_text(name)), str(invalid), at_key=True
                )
                continue
            interval = self.checked(ranges, name, join_path(field, column), _as_interval, "")
            if interval is not None:
                found.append((column, *interval))
        return tuple(found)

    def ground_truth(
        self, monitoring: CommentedMap, path: str, score: str | None
    ) -> GroundTruth | None:
        path = join_path(path, "ground_truth")
        truth = self.mapping(
            monitoring,
            "ground_truth",
            path,
            _GROUND_TRUTH.keys(),
            _GROUND_TRUTH.required_keys(),
        )
        if truth is None:
            return None
        if score is None and "score" not in monitoring:
            self.report(
                monitoring,
                "ground_truth",
                path,
                "compares the score with the label, but monitoring.score is not set; add "
                "score: <the column holding the model's output>.",
                at_key=True,
            )
        low, high = self.bounds(truth, path)
        label = self.value(truth, "label", path, as_column_name, None, required=True)
        metric = self.value(truth, "metric", path, _as_monitor_metric, "accuracy")
        self.metric_direction(truth, path, metric, low, high)
        if label is not None and label == score:
            self.report(
                truth,
                "label",
                join_path(path, "label"),
                f'"{label}" is the score column; the label is the column holding the true '
                "outcome, to compare the score with.",
            )
        return GroundTruth(label=label, metric=metric, min=low, max=high)

    def metric_direction(
        self,
        truth: CommentedMap,
        path: str,
        metric: str | None,
        low: float | None,
        high: float | None,
    ) -> None:
        """Refuse a bound on the side where a better model fails (min of an error...)."""
        if metric in LOWER_IS_BETTER and low is not None:
            self.report(
                truth,
                "min",
                join_path(path, "min"),
                f"{metric} is an error (lower is better): with min: {low:g} a model whose "
                f"{metric} is below {low:g}, a better one, fails. Use max: {low:g}.",
            )
        if metric is not None and metric not in LOWER_IS_BETTER and high is not None:
            self.report(
                truth,
                "max",
                join_path(path, "max"),
                f"{metric} is higher-is-better: with max: {high:g} a model whose {metric} is "
                f"above {high:g}, a better one, fails. Use min: {high:g}.",
            )

    def retrain(self, monitoring: CommentedMap, path: str) -> Retrain:
        path = join_path(path, "retrain")
        retrain = self.mapping(monitoring, "retrain", path, _RETRAIN.keys())
        return Retrain(
            enabled=self.value(retrain, "enabled", path, as_bool, True),
            cooldown_hours=self.value(
                retrain, "cooldown_hours", path, as_non_negative_number, 24.0
            ),
            timeout_hours=self.value(retrain, "timeout_hours", path, as_non_negative_number, 6.0),
        )

    def monitoring_reads_spark_output(
        self, model: CommentedMap, path: str, batch: Batch, monitoring: Monitoring
    ) -> None:
        """A Spark inference DAG writes each day as one Parquet file: monitoring.data must be
        that file, or the monitoring DAG would check data nothing writes."""
        scoring = next((d.spark for d in batch.dags if d.spark is not None), None)
        if scoring is None or monitoring.data is None:
            return
        expected = scoring.day_file("${ds}")
        if monitoring.data != expected:
            section = model["monitoring"]
            self.report(
                section,
                "data",
                join_path(path, "monitoring.data"),
                f'found "{monitoring.data}", which the Spark inference DAG does not write: it '
                f"writes each day to {expected} under the data prefix. Set data: {expected}",
            )

    def with_monitoring_dag(
        self, model: CommentedMap, path: str, batch: Batch, monitoring: Monitoring
    ) -> Batch:
        """`batch` with the product's monitoring DAG; a hand-written one may not stay beside it."""
        if any(dag.kind == "monitoring" for dag in batch.dags):
            self.report(
                model,
                "monitoring",
                join_path(path, "monitoring"),
                "the model has both a monitoring: section and a batch DAG of kind monitoring; "
                "the section generates that DAG. Remove the batch DAG of kind monitoring.",
                at_key=True,
            )
            return batch
        dag = Dag(
            kind="monitoring",
            entrypoint="modelci monitor",
            schedule=monitoring.schedule,
            retries=0,  # a retry would check the same data again
            resources=monitoring.resources,
            builtin=True,
        )
        return Batch(dags=(*batch.dags, dag))


def _as_share(value: Any) -> float:
    share = as_non_negative_number(value)
    if share > 1:
        raise wrong(value, "a share from 0 to 1", "Write 0.01 for 1 %.")
    return share


def _as_interval(value: Any) -> tuple[float, float]:
    expected = "a list [low, high] of two numbers, low <= high"
    if not isinstance(value, list) or len(value) != 2:
        raise wrong(value, expected, "For example: [0, 120].")
    low, high = as_number(value[0]), as_number(value[1])
    if low > high:
        raise wrong(value, expected, "Swap the two numbers.")
    return low, high
