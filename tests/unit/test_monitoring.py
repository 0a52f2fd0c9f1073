"""The monitoring checks, written once in the product: PSI against hand computations, the
share checks, the ground-truth metric, and when a failed check triggers retraining. The
tables are real CSV files; tests/unit/test_drift_types.py measures every kind of column."""

from __future__ import annotations

import csv
import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import NormalDist

import pytest

from modelci.config.types import GroundTruth, Monitoring, Retrain
from modelci.monitoring.checks import (
    DATA,
    DRIFT,
    NONE,
    QUALITY,
    SKIP,
    TRIGGER,
    DataProblem,
    LastTrigger,
    MonitorCheck,
    MonitorResult,
    decide_retraining,
    evaluate,
)
from modelci.monitoring.tables import TableFile, open_table

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def table(path: Path, rows: list[dict[str, object]]) -> TableFile:
    """`rows` written as a CSV file with a header line, opened as monitoring opens it."""
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return open_table(path, path.name)


def column_psi(tmp_path: Path, reference: list[float], current: list[float]) -> float:
    """The PSI `evaluate` logs for one column `x` of the two samples."""
    before = table(tmp_path / "ref.csv", [{"x": repr(v)} for v in reference])
    now = table(tmp_path / "cur.csv", [{"x": repr(v)} for v in current])
    spec = Monitoring(data="d.csv", reference="r.csv", features=("x",))
    return evaluate(spec, before, now).metrics["psi.x"]


def normal_sample(mean: float, size: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, 1.0) for _ in range(size)]


def expected_psi_of_shift(shift: float, bins: int = 10) -> float:
    """PSI of N(shift, 1) against N(0, 1) over N(0, 1)'s deciles, from the normal CDF."""
    reference = NormalDist()
    edges = [-math.inf, *(reference.inv_cdf(i / bins) for i in range(1, bins)), math.inf]
    shifted = NormalDist(mu=shift)
    total = 0.0
    for low, high in itertools.pairwise(edges):
        expected = 1 / bins
        actual = shifted.cdf(high) - shifted.cdf(low)
        total += (actual - expected) * math.log(actual / expected)
    return total


def test_psi_of_identical_samples_is_zero(tmp_path: Path) -> None:
    sample = normal_sample(0.0, 5000, seed=1)
    assert column_psi(tmp_path, sample, list(sample)) == 0.0


@pytest.mark.parametrize("shift", [0.25, 0.5, 1.0])
def test_psi_of_a_shifted_normal_is_what_the_formula_gives(tmp_path: Path, shift: float) -> None:
    reference = normal_sample(0.0, 200_000, seed=2)
    current = normal_sample(shift, 200_000, seed=3)
    expected = expected_psi_of_shift(shift)
    assert column_psi(tmp_path, reference, current) == pytest.approx(expected, rel=0.05)


def test_psi_of_a_small_hand_example(tmp_path: Path) -> None:
    # 30 distinct values (continuous): ten quantile buckets of three values each; the current
    # sample has everything in the top one.
    reference = [float(i) for i in range(30)]
    current = [29.0] * 30
    # Nine buckets at share 0.1 -> 1e-4 and one at 0.1 -> 1.0.
    by_hand = 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (1.0 - 0.1) * math.log(1.0 / 0.1)
    assert column_psi(tmp_path, reference, current) == pytest.approx(by_hand)


def test_missing_and_out_of_range_shares(tmp_path: Path) -> None:
    cells = ["1", "", "5", "200", "x", "NA"]
    reference = table(tmp_path / "ref.csv", [{"age": str(i)} for i in range(50)])
    current = table(tmp_path / "cur.csv", [{"age": v} for v in cells])
    spec = Monitoring(data="d", reference="r", features=("age",), ranges=(("age", 0, 100),))
    metrics = evaluate(spec, reference, current).metrics
    assert metrics["null_share.age"] == pytest.approx(2 / 6)
    # Of the four present: 200 and "x" are outside [0, 100].
    assert metrics["out_of_range.age"] == pytest.approx(2 / 4)


def spec(**changes) -> Monitoring:
    fields = {
        "data": "scores/${ds}.csv",
        "reference": "reference.csv",
        "features": ("age",),
        "score": "predicted",
        "max_psi": 0.2,
        "ranges": (("age", 0.0, 120.0),),
        "ground_truth": GroundTruth(label="label", metric="accuracy", min=0.8),
    }
    fields.update(changes)
    return Monitoring(**fields)


def rows(ages: list, predicted: list, labels: list) -> list[dict[str, object]]:
    return [
        {"age": str(a), "predicted": str(p), "label": str(y)}
        for a, p, y in zip(ages, predicted, labels, strict=True)
    ]


def test_evaluate_passes_on_data_like_the_reference(tmp_path: Path) -> None:
    ages = [20 + (i % 50) for i in range(1000)]
    labels = [i % 2 for i in range(1000)]
    reference = table(tmp_path / "ref.csv", rows(ages, labels, labels))
    result = evaluate(spec(), reference, table(tmp_path / "cur.csv", rows(ages, labels, labels)))
    assert result.passed, result.failures
    assert result.metrics["psi.age"] == 0.0
    assert result.metrics["accuracy"] == 1.0
    assert result.metrics["rows"] == 1000


def test_evaluate_fails_each_check_that_the_data_breaks(tmp_path: Path) -> None:
    n = 1000
    labels = [i % 2 for i in range(n)]
    reference = table(tmp_path / "ref.csv", rows([20 + (i % 50) for i in range(n)], labels, labels))
    ages: list[object] = [80 + (i % 50) for i in range(n)]  # older; 121..129 are 9 in every 50
    ages[0] = ""
    predicted = [1 - y if i % 4 == 0 else y for i, y in enumerate(labels)]  # 75 % right
    result = evaluate(spec(), reference, table(tmp_path / "cur.csv", rows(ages, predicted, labels)))
    failed = {check.name: check.kind for check in result.failures}
    assert failed == {
        "PSI of age": DRIFT,
        "PSI of predicted": DRIFT,  # 75 % predicted 1 against 50 %: 0.25 ln 1.5 + 0.25 ln 2
        "null share of age": DATA,
        "range of age": DATA,
        "accuracy against label": QUALITY,
    }
    assert result.metrics["psi.predicted"] == pytest.approx(
        0.25 * math.log(1.5) + 0.25 * math.log(2)
    )
    assert result.metrics["accuracy"] == pytest.approx(0.75)
    assert result.metrics["out_of_range.age"] == pytest.approx(180 / 999)  # row 0 is empty


@pytest.mark.parametrize(("metric", "expected"), [("mae", 50 / 99), ("rmse", math.sqrt(50 / 99))])
def test_error_metrics_against_ground_truth(tmp_path: Path, metric: str, expected: float) -> None:
    # Scores off by 1 on odd rows (50 of them); row 0 has no label and is left out: 99 rows.
    labels: list[object] = [float(i % 7) for i in range(100)]
    scores = [y + (i % 2) for i, y in enumerate(labels)]
    labels[0] = ""
    current = table(tmp_path / "cur.csv", rows([30] * 100, scores, labels))
    truth = GroundTruth(label="label", metric=metric, max=0.6)
    reference = table(tmp_path / "ref.csv", rows([30] * 100, scores, scores))
    result = evaluate(spec(ground_truth=truth, ranges=()), reference, current)
    assert result.metrics[metric] == pytest.approx(expected)
    check = next(c for c in result.checks if c.name == f"{metric} against label")
    assert check.passed == (expected <= 0.6) and check.kind == QUALITY
    assert "on 99 rows (max 0.6)" in check.message


def test_accuracy_compares_text_labels(tmp_path: Path) -> None:
    labels = ["yes", "no", "yes", "no"] * 25
    predicted = ["yes", "no", "no", "no"] * 25
    reference = table(tmp_path / "ref.csv", rows([30] * 100, predicted, labels))
    current = table(tmp_path / "cur.csv", rows([30] * 100, predicted, labels))
    result = evaluate(spec(ranges=()), reference, current)
    assert result.metrics["accuracy"] == pytest.approx(0.75)


def test_a_range_on_a_categorical_column_is_reported_not_a_crash(tmp_path: Path) -> None:
    regions = [{"region": r, "predicted": "1", "label": "1"} for r in ["north", "south"] * 20]
    reference = table(tmp_path / "ref.csv", regions)
    current = table(tmp_path / "cur.csv", regions)
    checked = spec(features=("region",), ranges=(("region", 0.0, 5.0),))
    (failure,) = evaluate(checked, reference, current).failures
    assert failure.kind == DATA and failure.message == (
        "range of region: region is categorical (the reference holds text such as 'north'), "
        "and a range applies to numbers; remove region from monitoring.ranges"
    )


def test_a_column_that_cannot_be_measured_says_why(tmp_path: Path) -> None:
    reference = table(
        tmp_path / "ref.csv",
        [{"age": "", "id": f"c-{i}", "predicted": 1, "label": 1} for i in range(10_001)],
    )
    current = table(
        tmp_path / "cur.csv", [{"age": "x", "id": "c-1", "predicted": 1, "label": 1}] * 5
    )
    result = evaluate(spec(features=("age", "id"), ranges=()), reference, current)
    messages = {c.name: c.message for c in result.failures if c.kind == DATA}
    assert messages["PSI of age"] == (
        "PSI of age: cannot be measured: the reference has no values in age (every cell is "
        "empty); log a reference with them, or remove age from monitoring.features"
    )
    assert "more than 10,000 distinct values of id" in messages["PSI of id"]
    assert "remove id from monitoring.features" in messages["PSI of id"]
    assert all(c.kind == DATA for c in result.failures)


def test_today_without_numbers_in_a_numeric_column_is_a_data_problem(tmp_path: Path) -> None:
    reference = table(tmp_path / "ref.csv", rows(list(range(50)), [1] * 50, [1] * 50))
    current = table(tmp_path / "cur.csv", rows(["n/a!"] * 10, [1] * 10, [1] * 10))
    result = evaluate(spec(ranges=()), reference, current)
    (failure,) = result.failures
    assert failure.kind == DATA
    assert "today's data has no numbers in age (text such as 'n/a!')" in failure.message


def test_a_missing_column_is_a_data_problem_naming_it(tmp_path: Path) -> None:
    reference = table(tmp_path / "ref.csv", rows([1.0], [1], [1]))
    current = table(tmp_path / "cur.csv", [{"age": "1", "label": "1"}])
    with pytest.raises(DataProblem, match=r"cur\.csv has no column 'predicted'"):
        evaluate(spec(), reference, current)


def test_an_empty_file_is_a_data_problem(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("age,predicted,label\n")
    reference = table(tmp_path / "ref.csv", rows([1.0], [1], [1]))
    with pytest.raises(DataProblem, match=r"s3://b/x\.csv has no rows"):
        evaluate(spec(), reference, open_table(tmp_path / "x.csv", "s3://b/x.csv"))


FAILED = MonitorResult(checks=(MonitorCheck("PSI of age", False, "PSI of age is 0.5"),), metrics={})
PASSED = MonitorResult(checks=(MonitorCheck("PSI of age", True, "ok"),), metrics={})
DATA_ONLY = MonitorResult(
    checks=(
        MonitorCheck("PSI of age", True, "ok"),
        MonitorCheck("null share of age", False, "null share of age: 30.00% ...", DATA),
        MonitorCheck("range of age", False, "range of age: 2.00% ...", DATA),
    ),
    metrics={},
)


def decide(result, last=None, retrain=None, production=True):
    retrain = retrain or Retrain()
    return decide_retraining(result, retrain, production_stand=production, last=last, now=NOW)


def test_a_failed_check_on_the_last_stand_triggers_retraining() -> None:
    decision = decide(FAILED)
    assert decision.action == TRIGGER and "PSI of age is 0.5" in decision.reason


def test_a_data_problem_is_reported_but_never_retrains() -> None:
    decision = decide(DATA_ONLY)
    assert decision.action == SKIP
    assert decision.reason.startswith("data problems are not drift")
    assert "null share of age: 30.00%" in decision.reason and "range of age" in decision.reason
    # With drift beside it, the drift triggers, and the reason names the drift only.
    both = MonitorResult(checks=(*DATA_ONLY.checks, *FAILED.checks), metrics={})
    decision = decide(both)
    assert decision.action == TRIGGER and decision.reason == "failed checks: PSI of age is 0.5"


def test_no_retraining_when_nothing_failed_or_the_data_was_missing_or_not_production() -> None:
    assert decide(PASSED).action == NONE
    assert decide(None).action == NONE  # a data problem is not drift
    assert decide(FAILED, production=False).action == NONE
    assert decide(FAILED, retrain=Retrain(enabled=False)).action == SKIP


def test_one_retraining_in_flight_and_a_cool_down() -> None:
    in_flight = LastTrigger(at=NOW - timedelta(hours=1), outcome="", pipeline="p/1")
    assert decide(FAILED, in_flight).action == SKIP
    assert "in flight" in decide(FAILED, in_flight).reason
    done = LastTrigger(at=NOW - timedelta(hours=1), outcome="promoted", pipeline="p/1")
    assert "cool-down" in decide(FAILED, done).reason
    old = LastTrigger(at=NOW - timedelta(hours=25), outcome="promoted", pipeline="p/1")
    assert decide(FAILED, old).action == TRIGGER
    # A retraining that never reported is waited on for timeout_hours only.
    lost = LastTrigger(at=NOW - timedelta(hours=7), outcome="", pipeline="p/1")
    assert decide(FAILED, lost, retrain=Retrain(cooldown_hours=2)).action == TRIGGER
