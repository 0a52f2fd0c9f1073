"""Monitoring of a deployed model: the checks of `models[].monitoring` in `mlops.yaml`, and
whether a failed check triggers retraining.

Takes the two tables as local files (CSV or Parquet, read in batches: `tables.py`) and returns
results; downloading them, logging to MLflow and calling GitLab are `commands/monitor.py`'s job.

The checks, written once here for every team, each of a kind:
- drift: the population stability index (PSI) of each feature and of the score, today's data
  against the reference (the data the model was trained on), measured by the column's kind
  (`drift.py`: categorical, discrete or continuous, taken from the reference);
- quality: a metric against ground truth (accuracy, MAE or RMSE of the score against the
  label column) when the config names a label;
- data: the share of missing values of each watched column (empty, NA, NaN, null, None), the
  share of values of a column outside its `ranges:` interval (a value that is not a number
  counts as outside), and a column that cannot be measured at all.

A failed drift or quality check may trigger retraining; a data problem is reported (the check
fails, the DAG run is red) but never retrains: a model trained again on broken data is no cure.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..config.types import Monitoring, Retrain
from ..lifecycle.gate import Check
from .drift import (
    CATEGORICAL,
    CONTINUOUS,
    DISCRETE,
    MAX_DISTINCT_TEXT,
    Buckets,
    Distribution,
    Profile,
    Survey,
    Unmeasurable,
    categorical_buckets,
    continuous_buckets,
    discrete_buckets,
    first_text,
    psi,
    shares,
)
from .tables import Cells, DataProblem, TableFile, batches, cells, require_columns

if TYPE_CHECKING:
    import pyarrow as pa

DRIFT = "drift"
QUALITY = "quality"
DATA = "data"
# The numbers of the reference's continuous columns held at once (8 bytes each): columns past
# it are read in a further pass over the reference, so a large reference fits the pod.
REFERENCE_NUMBERS_BYTES = 512 << 20


@dataclass(frozen=True)
class MonitorCheck(Check):
    kind: str = DRIFT  # DRIFT, QUALITY or DATA: what a failure says about the model


@dataclass(frozen=True)
class MonitorResult:
    checks: tuple[MonitorCheck, ...]
    metrics: dict[str, float]  # what is logged to MLflow, e.g. {"psi.tenure_months": 0.03}
    distributions: tuple[Distribution, ...] = ()  # what the picture shows, column by column

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[MonitorCheck, ...]:
        return tuple(check for check in self.checks if not check.passed)


# --- the reference ------------------------------------------------------------------------------


def profile_reference(table: TableFile, names: Sequence[str]) -> dict[str, Profile]:
    """How each column of `names` is measured, from the reference: one reading tells each
    column's kind (and counts the discrete ones), then one reading per group of categorical
    and continuous columns measures them, continuous columns grouped to hold at most
    `REFERENCE_NUMBERS_BYTES` of numbers at once."""
    names = list(dict.fromkeys(names))
    surveys = {name: Survey() for name in names}
    for batch in batches(table, names):
        for name, survey in surveys.items():
            survey.add(batch[name])
    if names and surveys[names[0]].rows == 0:
        raise DataProblem(f"{table.source} has no rows (a header only)")
    profiles: dict[str, Profile] = {}
    for name, survey in surveys.items():
        if survey.kind is None:
            profiles[name] = Unmeasurable(
                f"the reference has no values in {name} (every cell is empty); log a reference "
                f"with them, or remove {name} from monitoring.features"
            )
        elif survey.kind == DISCRETE:
            assert survey.values is not None
            profiles[name] = discrete_buckets(survey.values)
    later = [name for name in names if name not in profiles]
    for group in _reading_groups(later, surveys):
        profiles.update(_measure_reference(table, group, surveys))
    return profiles


def _reading_groups(names: Sequence[str], surveys: Mapping[str, Survey]) -> list[list[str]]:
    """The categorical columns and the first continuous ones, then the other continuous ones
    in groups whose numbers fit in REFERENCE_NUMBERS_BYTES (one column at least)."""
    groups: list[list[str]] = []
    group = [name for name in names if surveys[name].kind == CATEGORICAL]
    held = 0
    for name in names:
        if surveys[name].kind != CONTINUOUS:
            continue
        size = surveys[name].numbers * 8
        if held and held + size > REFERENCE_NUMBERS_BYTES:
            groups.append(group)
            group, held = [], 0
        group.append(name)
        held += size
    return [*groups, group] if group else groups


def _measure_reference(
    table: TableFile, group: Sequence[str], surveys: Mapping[str, Survey]
) -> dict[str, Profile]:
    import pyarrow as pa
    import pyarrow.compute as pc

    numbers: dict[str, list[pa.Array]] = {
        name: [] for name in group if surveys[name].kind == CONTINUOUS
    }
    categories: dict[str, dict[str, int] | None] = {
        name: {} for name in group if surveys[name].kind == CATEGORICAL
    }
    for batch in batches(table, group):
        for name, chunks in numbers.items():
            chunks.append(pc.drop_null(cells(batch[name]).numbers))
        for name, found in categories.items():
            categories[name] = _count_categories(found, batch[name])
    profiles: dict[str, Profile] = {}
    for name in list(numbers):
        profiles[name] = continuous_buckets(pa.concat_arrays(numbers.pop(name)))
    for name, found in categories.items():
        example = surveys[name].text_example
        profiles[name] = (
            categorical_buckets(found)
            if found is not None
            else Unmeasurable(
                f"the reference holds more than {MAX_DISTINCT_TEXT:,} distinct values of {name}, "
                f"text among them (such as {example!r}): an identifier or free text is not a "
                f"feature; remove {name} from monitoring.features"
            )
        )
    return profiles


def _count_categories(found: dict[str, int] | None, array: pa.Array) -> dict[str, int] | None:
    """`found` with the batch's categories counted; None past MAX_DISTINCT_TEXT of them."""
    import pyarrow.compute as pc

    if found is None:
        return None
    text = cells(array, text=True, numbers=False).text
    assert text is not None
    for pair in pc.value_counts(pc.drop_null(text)).to_pylist():
        found[pair["values"]] = found.get(pair["values"], 0) + pair["counts"]
    return found if len(found) <= MAX_DISTINCT_TEXT else None


# --- today's data -------------------------------------------------------------------------------


@dataclass
class _Seen:
    """Today's figures of one column."""

    rows: int = 0
    missing: int = 0
    numbers: int = 0
    text_example: str | None = None
    counts: list[int] | None = None  # per bucket of the column's profile, when it has one
    outside: int = 0  # present values outside the column's range, when it has one

    def add(
        self,
        array: pa.Array,
        column: Cells,
        profile: Profile | None,
        bounds: tuple[float, float] | None,
    ) -> None:
        self.rows += column.rows
        self.missing += column.count_missing()
        self.numbers += column.count_numbers()
        if self.text_example is None and column.count_text():
            self.text_example = first_text(array, column)
        if self.counts is not None and isinstance(profile, Buckets):
            for index, count in enumerate(profile.count(column)):
                self.counts[index] += count
        if bounds is not None:
            self.outside += _outside(column, *bounds)


@dataclass
class _Truth:
    """The ground-truth metric, summed batch by batch."""

    metric: str
    pairs: int = 0  # rows with both a label and a score (both numbers, but for accuracy)
    total: float = 0.0  # right answers, absolute errors or squared errors

    def add(self, label: Cells, score: Cells) -> None:
        import pyarrow.compute as pc

        if self.metric == "accuracy":
            both = pc.and_(pc.invert(label.missing), pc.invert(score.missing))
            numeric = pc.and_(pc.is_valid(label.numbers), pc.is_valid(score.numbers))
            same = pc.if_else(
                numeric,
                pc.equal(label.numbers, score.numbers),
                pc.equal(label.text, score.text),
            )
            self.pairs += _count(both)
            self.total += _count(pc.and_(both, same))
            return
        error = pc.abs(pc.subtract(label.numbers, score.numbers))
        self.pairs += len(error) - error.null_count
        power = error if self.metric == "mae" else pc.multiply(error, error)
        self.total += float(pc.sum(power).as_py() or 0.0)

    def value(self) -> float:
        mean = self.total / self.pairs
        return math.sqrt(mean) if self.metric == "rmse" else mean


@dataclass
class _Today:
    rows: int = 0
    seen: dict[str, _Seen] = field(default_factory=dict)
    truth: _Truth | None = None


def _read_today(
    current: TableFile, names: Sequence[str], profiles: Mapping[str, Profile], spec: Monitoring
) -> _Today:
    """Every figure of today's data the checks need, in one reading of the table."""
    bounds = {name: (low, high) for name, low, high in spec.ranges}
    today = _Today(
        seen={name: _Seen(counts=_empty_counts(profiles.get(name))) for name in names},
        truth=_Truth(spec.ground_truth.metric) if spec.ground_truth else None,
    )
    with_text = set(_columns_read_as_text(profiles, spec))
    words_only = with_text - set(_ground_truth_columns(spec))
    for batch in batches(current, names):
        columns = {
            name: cells(batch[name], text=name in with_text, numbers=name not in words_only)
            for name in names
        }
        for name, column in columns.items():
            today.seen[name].add(batch[name], column, profiles.get(name), bounds.get(name))
        if today.truth is not None and spec.ground_truth and spec.score:
            today.truth.add(columns[spec.ground_truth.label], columns[spec.score])
    today.rows = today.seen[names[0]].rows
    if today.rows == 0:
        raise DataProblem(f"{current.source} has no rows (a header only)")
    return today


def _columns_read_as_text(profiles: Mapping[str, Profile], spec: Monitoring) -> Iterator[str]:
    for name, profile in profiles.items():
        if isinstance(profile, Buckets) and profile.kind == CATEGORICAL:
            yield name
    if spec.ground_truth is not None and spec.ground_truth.metric == "accuracy":
        yield from _ground_truth_columns(spec)


def _ground_truth_columns(spec: Monitoring) -> tuple[str, ...]:
    truth = spec.ground_truth
    return (truth.label, spec.score) if truth is not None and spec.score else ()


def _empty_counts(profile: Profile | None) -> list[int] | None:
    return [0] * len(profile.labels) if isinstance(profile, Buckets) else None


def _outside(column: Cells, low: float, high: float) -> int:
    """Present values that are not a number within [low, high]."""
    import pyarrow.compute as pc

    inside = pc.and_(pc.greater_equal(column.numbers, low), pc.less_equal(column.numbers, high))
    return column.rows - column.count_missing() - _count(inside)


def _count(mask: pa.Array) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(mask).as_py() or 0)


# --- the checks ---------------------------------------------------------------------------------


def evaluate(spec: Monitoring, reference: TableFile, current: TableFile) -> MonitorResult:
    """Every check of `spec` on `current` against `reference`. DataProblem when a table has no
    rows or lacks a column the checks need."""
    watched = list(dict.fromkeys([*spec.features, *([spec.score] if spec.score else [])]))
    label = [spec.ground_truth.label] if spec.ground_truth else []
    needed = list(dict.fromkeys([*watched, *(name for name, _, _ in spec.ranges), *label]))
    require_columns(reference, watched)
    require_columns(current, needed)
    profiles = profile_reference(reference, watched)
    today = _read_today(current, needed, profiles, spec)
    checks: list[MonitorCheck] = []
    metrics: dict[str, float] = {"rows": float(today.rows)}
    distributions: list[Distribution] = []
    for name in watched:
        seen = today.seen[name]
        check, distribution = _drift_check(spec, name, profiles[name], seen, metrics)
        checks.append(check)
        distributions.append(distribution)
        share = seen.missing / seen.rows
        metrics[f"null_share.{name}"] = share
        empty = "of the rows are empty"
        checks.append(_at_most(f"null share of {name}", share, spec.max_null_share, empty))
    for name, low, high in spec.ranges:
        seen, profile = today.seen[name], profiles.get(name)
        checks.append(_range_check(spec, name, low, high, seen, profile, metrics))
    if spec.ground_truth is not None and today.truth is not None:
        checks.append(_ground_truth_check(spec, today.truth, metrics))
    return MonitorResult(tuple(checks), metrics, tuple(distributions))


def _drift_check(
    spec: Monitoring, name: str, profile: Profile, seen: _Seen, metrics: dict[str, float]
) -> tuple[MonitorCheck, Distribution]:
    check = f"PSI of {name}"
    if isinstance(profile, Unmeasurable):
        reason = f"{check}: cannot be measured: {profile.reason}"
        return MonitorCheck(check, False, reason, DATA), _unmeasured(name, reason)
    counts = seen.counts or []
    if not sum(counts):
        reason = f"{check}: {_nothing_to_measure(name, profile, seen)}"
        return MonitorCheck(check, False, reason, DATA), _unmeasured(name, reason, profile)
    value = psi(profile.reference, counts)
    metrics[f"psi.{name}"] = value
    passed = value <= spec.max_psi
    verdict = "stable" if passed else "drifted"
    message = f"{check} is {value:.4f} (max {spec.max_psi:g}; {profile.description}): {verdict}"
    distribution = Distribution(
        column=name,
        kind=profile.kind,
        labels=profile.labels,
        reference=tuple(shares(profile.reference)),
        current=tuple(shares(counts)),
        psi=value,
    )
    return MonitorCheck(check, passed, message, DRIFT), distribution


def _nothing_to_measure(name: str, profile: Buckets, seen: _Seen) -> str:
    if seen.text_example is not None and profile.kind != CATEGORICAL:
        return (
            f"today's data has no numbers in {name} (text such as {seen.text_example!r}), "
            f"though the reference's {name} is {profile.kind}: the data is broken"
        )
    return f"today's data has no values in {name} (every cell is empty)"


def _unmeasured(name: str, reason: str, profile: Buckets | None = None) -> Distribution:
    labels = profile.labels if profile is not None else ()
    reference = tuple(shares(profile.reference)) if profile is not None else ()
    kind = profile.kind if profile is not None else "unmeasured"
    current = (0.0,) * len(labels)
    return Distribution(name, kind, labels, reference, current, None, reason)


def _range_check(
    spec: Monitoring,
    name: str,
    low: float,
    high: float,
    seen: _Seen,
    profile: Profile | None,
    metrics: dict[str, float],
) -> MonitorCheck:
    check = f"range of {name}"
    if isinstance(profile, Buckets) and profile.kind == CATEGORICAL:
        example = profile.values[0] if profile.values else ""
        return MonitorCheck(
            check,
            False,
            f"{check}: {name} is categorical (the reference holds text such as {example!r}), "
            f"and a range applies to numbers; remove {name} from monitoring.ranges",
            DATA,
        )
    present = seen.rows - seen.missing
    share = seen.outside / present if present else 0.0
    metrics[f"out_of_range.{name}"] = share
    outside = f"of the values are outside [{low:g}, {high:g}]"
    result = _at_most(check, share, spec.max_out_of_range, outside)
    if not result.passed and seen.numbers == 0 and seen.text_example is not None:
        note = f" (none is a number: text such as {seen.text_example!r})"
        return MonitorCheck(result.name, False, result.message + note, DATA)
    return result


def _at_most(name: str, share: float, limit: float, what: str) -> MonitorCheck:
    passed = share <= limit
    return MonitorCheck(name, passed, f"{name}: {share:.2%} {what} (max {limit:.2%})", DATA)


def _ground_truth_check(spec: Monitoring, truth: _Truth, metrics: dict[str, float]) -> MonitorCheck:
    bound = spec.ground_truth
    assert bound is not None and spec.score is not None  # the config requires a score with it
    name = f"{bound.metric} against {bound.label}"
    if not truth.pairs:
        both = "a label and a score" if bound.metric == "accuracy" else "a numeric label and score"
        return MonitorCheck(name, False, f"{name}: no row has both {both}", DATA)
    value = truth.value()
    metrics[bound.metric] = value
    low_ok = bound.min is None or value >= bound.min
    high_ok = bound.max is None or value <= bound.max
    bounds = ", ".join(
        f"{word} {limit:g}"
        for word, limit in (("min", bound.min), ("max", bound.max))
        if limit is not None
    )
    message = f"{name} is {value:.4f} on {truth.pairs} rows ({bounds})"
    return MonitorCheck(name, low_ok and high_ok, message, QUALITY)


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
    not be checked: a data problem is not drift, and retraining would not mend it; nor does a
    failed data check (null share, range, a column that cannot be measured) retrain: only
    drift and ground-truth quality do."""
    if result is None:
        return Decision(NONE, "the monitoring data could not be checked; retraining would not help")
    if result.passed:
        return Decision(NONE, "every check passed")
    if not production_stand:
        return Decision(NONE, "retraining is triggered only by the last stand's monitoring")
    retrain_for = [check for check in result.failures if check.kind != DATA]
    if not retrain_for:
        problems = "; ".join(check.message for check in result.failures)
        return Decision(
            SKIP,
            f"data problems are not drift, and retraining on broken data would not mend them "
            f"(reported, not retrained for): {problems}",
        )
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
    failed = "; ".join(check.message for check in retrain_for)
    return Decision(TRIGGER, f"failed checks: {failed}")


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
