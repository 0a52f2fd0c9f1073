"""The monitoring checks, written once in the product: PSI against hand computations, the
share checks, the ground-truth metric, and when a failed check triggers retraining."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import pytest

from modelci.config import GroundTruth, Monitoring, Retrain
from modelci.gate import Check
from modelci.monitoring import (
    NONE,
    SKIP,
    TRIGGER,
    DataProblem,
    LastTrigger,
    MonitorResult,
    decide_retraining,
    evaluate,
    missing_share,
    number,
    out_of_range_share,
    psi,
    read_table,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


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


def test_psi_of_identical_samples_is_zero() -> None:
    sample = normal_sample(0.0, 5000, seed=1)
    assert psi(sample, list(sample)) == 0.0


@pytest.mark.parametrize("shift", [0.25, 0.5, 1.0])
def test_psi_of_a_shifted_normal_is_what_the_formula_gives(shift: float) -> None:
    reference = normal_sample(0.0, 200_000, seed=2)
    current = normal_sample(shift, 200_000, seed=3)
    expected = expected_psi_of_shift(shift)
    assert psi(reference, current) == pytest.approx(expected, rel=0.05)


def test_psi_of_a_small_hand_example() -> None:
    # Reference deciles of 0..9 put one value per bin; the current sample has all in the top.
    reference = [float(i) for i in range(10)]
    current = [9.0] * 10
    # Nine bins at share 0.1 -> 1e-4 and one at 0.1 -> 1.0.
    by_hand = 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (1.0 - 0.1) * math.log(1.0 / 0.1)
    assert psi(reference, current) == pytest.approx(by_hand)


def test_cells_read_as_numbers_missing_or_invalid() -> None:
    assert number("1.5") == 1.5
    assert number("True") == 1.0 and number("false") == 0.0
    assert number("") is None and number("NaN") is None and number(" null ") is None
    assert math.isnan(number("abc"))  # type: ignore[arg-type]


def test_missing_and_out_of_range_shares() -> None:
    values = [number(v) for v in ["1", "", "5", "200", "x", "NA"]]
    assert missing_share(values) == pytest.approx(2 / 6)
    # Of the four present: 200 and "x" are outside [0, 100].
    assert out_of_range_share(values, 0, 100) == pytest.approx(2 / 4)


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


def rows(ages: list[float], predicted: list[int], labels: list[int]) -> list[dict[str, str]]:
    return [
        {"age": str(a), "predicted": str(p), "label": str(y)}
        for a, p, y in zip(ages, predicted, labels, strict=True)
    ]


def test_evaluate_passes_on_data_like_the_reference() -> None:
    ages = [20 + (i % 50) for i in range(1000)]
    labels = [i % 2 for i in range(1000)]
    reference = rows(ages, labels, labels)
    result = evaluate(spec(), reference, rows(ages, labels, labels), sources=("ref", "cur"))
    assert result.passed, result.failures
    assert result.metrics["psi.age"] == 0.0
    assert result.metrics["accuracy"] == 1.0
    assert result.metrics["rows"] == 1000


def test_evaluate_fails_each_check_that_the_data_breaks() -> None:
    n = 1000
    labels = [i % 2 for i in range(n)]
    reference = rows([20 + (i % 50) for i in range(n)], labels, labels)
    ages = [80 + (i % 50) for i in range(n)]  # older; 121..129 are 9 in every 50
    predicted = [1 - y if i % 4 == 0 else y for i, y in enumerate(labels)]  # 75 % right
    current = rows(ages, predicted, labels)
    current[0]["age"] = ""
    result = evaluate(spec(), reference, current, sources=("ref", "cur"))
    failed = {check.name for check in result.failures}
    assert failed == {
        "PSI of age",
        "PSI of predicted",  # 75 % predicted 1 against 50 %: 0.25 ln 1.5 + 0.25 ln 2
        "null share of age",
        "range of age",
        "accuracy against label",
    }
    assert result.metrics["psi.predicted"] == pytest.approx(
        0.25 * math.log(1.5) + 0.25 * math.log(2)
    )
    assert result.metrics["accuracy"] == pytest.approx(0.75)
    assert result.metrics["out_of_range.age"] == pytest.approx(180 / 999)  # row 0 is empty


def test_a_missing_column_is_a_data_problem_naming_it() -> None:
    reference = rows([1.0], [1], [1])
    current = [{"age": "1", "label": "1"}]
    with pytest.raises(DataProblem, match="cur has no column 'predicted'"):
        evaluate(spec(), reference, current, sources=("ref", "cur"))


def test_an_empty_file_is_a_data_problem() -> None:
    with pytest.raises(DataProblem, match=r"s3://b/x\.csv has no rows"):
        read_table(b"age,predicted\n", "s3://b/x.csv")


FAILED = MonitorResult(checks=(Check("PSI of age", False, "PSI of age is 0.5"),), metrics={})
PASSED = MonitorResult(checks=(Check("PSI of age", True, "ok"),), metrics={})


def decide(result, last=None, retrain=None, production=True):
    retrain = retrain or Retrain()
    return decide_retraining(result, retrain, production_stand=production, last=last, now=NOW)


def test_a_failed_check_on_the_last_stand_triggers_retraining() -> None:
    decision = decide(FAILED)
    assert decision.action == TRIGGER and "PSI of age is 0.5" in decision.reason


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
