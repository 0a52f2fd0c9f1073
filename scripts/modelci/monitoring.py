"""Monitoring of a deployed model: the checks of `models[].monitoring` in `mlops.yaml`, and
whether a failed check triggers retraining.

Pure: takes tables as rows of text (CSV as the scoring DAG writes it) and returns results;
reading S3, logging to MLflow and calling GitLab are `commands/monitor.py`'s job.

The checks, written once here for every team:
- population stability index (PSI) of each feature and of the score, current data against
  the reference (the data the model was trained on): bins are the reference's deciles, and
  PSI = sum over bins of (current share - reference share) * ln(current share / reference
  share), each share floored at `PSI_FLOOR` so an empty bin does not make it infinite;
- the share of missing values of each watched column (empty, NA, NaN, null, None);
- the share of values of a column outside its `ranges:` interval (a value that is not a
  number counts as outside);
- a metric against ground truth (accuracy, MAE or RMSE of the score against the label column)
  when the config names a label.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .config import Monitoring, Retrain
from .gate import Check

PSI_BINS = 10
PSI_FLOOR = 1e-4
MISSING = frozenset({"", "na", "nan", "null", "none"})
_BOOLEANS = {"true": 1.0, "false": 0.0}

Rows = Sequence[Mapping[str, str]]


class DataProblem(ValueError):
    """The monitoring data cannot be checked at all (missing, empty, without a column)."""


@dataclass(frozen=True)
class MonitorResult:
    checks: tuple[Check, ...]
    metrics: dict[str, float]  # what is logged to MLflow, e.g. {"psi.tenure_months": 0.03}

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)


# --- tables -------------------------------------------------------------------------------------


def read_table(data: bytes, source: str) -> list[dict[str, str]]:
    """The rows of a CSV file with a header line; DataProblem when it has no rows."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataProblem(f"{source} is not UTF-8 text; expected a CSV file") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise DataProblem(f"{source} has no rows (an empty file, or a header only)")
    return rows


def number(text: str | None) -> float | None:
    """A cell as a number: None when missing, NaN when it is not a number; true/false are 1/0."""
    if text is None or text.strip().lower() in MISSING:
        return None
    cleaned = text.strip().lower()
    if cleaned in _BOOLEANS:
        return _BOOLEANS[cleaned]
    try:
        value = float(cleaned)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def column(rows: Rows, name: str, source: str) -> list[float | None]:
    if name not in rows[0]:
        found = ", ".join(rows[0]) or "none"
        raise DataProblem(f"{source} has no column {name!r} (its columns: {found})")
    return [number(row.get(name)) for row in rows]


# --- the checks ---------------------------------------------------------------------------------


def psi(reference: Sequence[float], current: Sequence[float], bins: int = PSI_BINS) -> float:
    """Population stability index of `current` against `reference` (numbers only)."""
    if not reference or not current:
        raise ValueError("PSI needs values in both samples")
    edges = _decile_edges(sorted(reference), bins)
    expected = _shares(reference, edges)
    actual = _shares(current, edges)
    return sum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True))


def _decile_edges(ordered: Sequence[float], bins: int) -> list[float]:
    """Inner bin edges at the reference's quantiles; repeated values give one edge."""
    edges = {ordered[min(len(ordered) - 1, (len(ordered) * i) // bins)] for i in range(1, bins)}
    return sorted(edges)


def _shares(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """Share of `values` in each bin (-inf, e0), [e0, e1), ..., [en, inf), floored."""
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect.bisect_right(edges, value)] += 1
    return [max(count / len(values), PSI_FLOOR) for count in counts]


def missing_share(values: Sequence[float | None]) -> float:
    return sum(value is None for value in values) / len(values)


def out_of_range_share(values: Sequence[float | None], low: float, high: float) -> float:
    present = [value for value in values if value is not None]
    if not present:
        return 0.0
    return sum(math.isnan(v) or not low <= v <= high for v in present) / len(present)


def ground_truth_metric(metric: str, labels: Sequence[float], scores: Sequence[float]) -> float:
    pairs = list(zip(labels, scores, strict=True))
    if metric == "accuracy":
        return sum(label == score for label, score in pairs) / len(pairs)
    if metric == "mae":
        return sum(abs(label - score) for label, score in pairs) / len(pairs)
    if metric == "rmse":
        return math.sqrt(sum((label - score) ** 2 for label, score in pairs) / len(pairs))
    raise ValueError(f"unknown metric {metric!r}")


def evaluate(
    spec: Monitoring, reference: Rows, current: Rows, *, sources: Sequence[str]
) -> MonitorResult:
    """Every check of `spec` on `current` against `reference`. DataProblem when a column the
    checks need is missing from either table; `sources` names the two tables for messages."""
    reference_source, current_source = sources
    checks: list[Check] = []
    metrics: dict[str, float] = {"rows": float(len(current))}
    watched = [*spec.features, *([spec.score] if spec.score else [])]
    for name in watched:
        now = column(current, name, current_source)
        before = column(reference, name, reference_source)
        checks.append(_psi_check(spec, name, before, now, metrics))
        share = missing_share(now)
        metrics[f"null_share.{name}"] = share
        checks.append(
            _at_most(f"null share of {name}", share, spec.max_null_share, "of the rows are empty")
        )
    for name, low, high in spec.ranges:
        share = out_of_range_share(column(current, name, current_source), low, high)
        metrics[f"out_of_range.{name}"] = share
        outside = f"of the values are outside [{low:g}, {high:g}]"
        checks.append(_at_most(f"range of {name}", share, spec.max_out_of_range, outside))
    if spec.ground_truth is not None:
        checks.append(_ground_truth_check(spec, current, current_source, metrics))
    return MonitorResult(checks=tuple(checks), metrics=metrics)


def _psi_check(
    spec: Monitoring,
    name: str,
    before: Sequence[float | None],
    now: Sequence[float | None],
    metrics: dict[str, float],
) -> Check:
    reference = [v for v in before if v is not None and not math.isnan(v)]
    current = [v for v in now if v is not None and not math.isnan(v)]
    if not reference or not current:
        side = "reference" if not reference else "current data"
        return Check(f"PSI of {name}", False, f"PSI of {name}: the {side} has no numbers in it")
    value = psi(reference, current)
    metrics[f"psi.{name}"] = value
    passed = value <= spec.max_psi
    verdict = "stable" if passed else "drifted"
    return Check(
        f"PSI of {name}",
        passed,
        f"PSI of {name} is {value:.4f} (max {spec.max_psi:g}): {verdict}",
    )


def _at_most(name: str, share: float, limit: float, what: str) -> Check:
    passed = share <= limit
    return Check(name, passed, f"{name}: {share:.2%} {what} (max {limit:.2%})")


def _ground_truth_check(
    spec: Monitoring, current: Rows, source: str, metrics: dict[str, float]
) -> Check:
    truth = spec.ground_truth
    assert truth is not None and spec.score is not None  # the config requires a score with it
    labels = column(current, truth.label, source)
    scores = column(current, spec.score, source)
    pairs = [
        (label, score)
        for label, score in zip(labels, scores, strict=True)
        if label is not None and score is not None and not math.isnan(label + score)
    ]
    name = f"{truth.metric} against {truth.label}"
    if not pairs:
        return Check(name, False, f"{name}: no row has both a label and a score")
    value = ground_truth_metric(truth.metric, [p[0] for p in pairs], [p[1] for p in pairs])
    metrics[truth.metric] = value
    low_ok = truth.min is None or value >= truth.min
    high_ok = truth.max is None or value <= truth.max
    bounds = ", ".join(
        f"{word} {limit:g}"
        for word, limit in (("min", truth.min), ("max", truth.max))
        if limit is not None
    )
    return Check(name, low_ok and high_ok, f"{name} is {value:.4f} on {len(pairs)} rows ({bounds})")


# --- retraining ---------------------------------------------------------------------------------

TRIGGER = "trigger"
SKIP = "skip"
NONE = "none"


@dataclass(frozen=True)
class LastTrigger:
    """The newest retraining this environment's monitoring triggered."""

    at: datetime
    outcome: str  # "" while the retraining pipeline has not reported
    pipeline: str  # its URL or id, for messages


@dataclass(frozen=True)
class Decision:
    action: str  # TRIGGER, SKIP (a failed check, but not now) or NONE (nothing to retrain for)
    reason: str


def decide_retraining(
    result: MonitorResult | None,
    retrain: Retrain,
    *,
    production_stand: bool,
    last: LastTrigger | None,
    now: datetime,
) -> Decision:
    """Whether this monitoring run triggers a retraining. `result` is None when the data could
    not be checked: a data problem is not drift, and retraining would not mend it."""
    if result is None:
        return Decision(NONE, "the monitoring data could not be checked; retraining would not help")
    if result.passed:
        return Decision(NONE, "every check passed")
    if not production_stand:
        return Decision(NONE, "retraining is triggered only by the last stand's monitoring")
    if not retrain.enabled:
        return Decision(SKIP, "retraining is disabled (monitoring.retrain.enabled: false)")
    if last is not None:
        if not last.outcome and now - last.at < timedelta(hours=retrain.timeout_hours):
            return Decision(
                SKIP, f"a retraining is in flight (pipeline {last.pipeline}, since {_at(last.at)})"
            )
        until = last.at + timedelta(hours=retrain.cooldown_hours)
        if now < until:
            return Decision(
                SKIP,
                f"cool-down until {_at(until)} after the retraining of {_at(last.at)} "
                f"({last.outcome or 'no outcome reported'})",
            )
    failed = "; ".join(check.message for check in result.failures)
    return Decision(TRIGGER, f"failed checks: {failed}")


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
