import math
import xml.etree.ElementTree as ET

import pytest

from modelci.config.types import Gate, MetricThreshold
from modelci.lifecycle.gate import Check, GateResult, Served, evaluate_gate, gate_junit_xml, summary

ACCURACY = MetricThreshold(name="accuracy", min=0.8)
RMSE = MetricThreshold(name="rmse", max=2.0)


def gate(*metrics: MetricThreshold, compare: bool = True, tolerance: float = 0.0) -> Gate:
    return Gate(metrics=metrics, compare_with_production=compare, tolerance=tolerance)


def prod(metrics: dict[str, float]) -> Served:
    return Served("production", metrics)


def failed_names(result: GateResult) -> list[str]:
    return [check.name for check in result.checks if not check.passed]


def test_all_thresholds_met_passes():
    result = evaluate_gate(gate(ACCURACY, RMSE), {"accuracy": 0.9, "rmse": 1.5}, None)
    assert result.passed
    assert [check.name for check in result.checks] == ["accuracy >= 0.8", "rmse <= 2"]


def test_threshold_bounds_are_inclusive():
    result = evaluate_gate(gate(ACCURACY, RMSE), {"accuracy": 0.8, "rmse": 2.0}, None)
    assert result.passed


def test_below_min_fails_with_value_and_threshold_in_message():
    result = evaluate_gate(gate(ACCURACY), {"accuracy": 0.7}, None)
    assert not result.passed
    (check,) = result.checks
    assert not check.passed
    assert "0.7" in check.message and "0.8" in check.message


def test_above_max_fails():
    result = evaluate_gate(gate(RMSE), {"rmse": 2.5}, None)
    assert failed_names(result) == ["rmse <= 2"]


def test_min_and_max_on_one_metric_are_two_checks():
    band = MetricThreshold(name="ratio", min=0.2, max=0.4)
    result = evaluate_gate(gate(band), {"ratio": 0.5}, None)
    assert [c.passed for c in result.checks] == [True, False]
    assert not result.passed


def test_nan_metric_never_passes():
    result = evaluate_gate(gate(ACCURACY, RMSE), {"accuracy": math.nan, "rmse": math.nan}, None)
    assert failed_names(result) == ["accuracy >= 0.8", "rmse <= 2"]


def test_missing_metric_fails_naming_it_and_listing_logged_metrics():
    result = evaluate_gate(gate(ACCURACY, RMSE), {"acc": 0.95, "rmse": 1.0}, served=None)
    assert not result.passed
    missing = result.checks[0]
    assert not missing.passed
    assert "'accuracy'" in missing.message
    assert "acc, rmse" in missing.message


def test_missing_metric_when_run_logged_nothing():
    result = evaluate_gate(gate(ACCURACY), {}, None)
    assert "logged: none" in result.checks[0].message


def test_production_comparison_higher_is_better_for_min_metrics():
    result = evaluate_gate(gate(ACCURACY), {"accuracy": 0.85}, prod({"accuracy": 0.9}))
    assert failed_names(result) == ["accuracy vs production"]
    assert "worse than production's 0.9" in result.checks[-1].message


def test_production_comparison_lower_is_better_for_max_only_metrics():
    worse = evaluate_gate(gate(RMSE), {"rmse": 1.5}, prod({"rmse": 1.2}))
    better = evaluate_gate(gate(RMSE), {"rmse": 1.0}, prod({"rmse": 1.2}))
    assert failed_names(worse) == ["rmse vs production"]
    assert better.passed


def test_tolerance_allows_small_degradation_only():
    within = evaluate_gate(
        gate(ACCURACY, tolerance=0.05), {"accuracy": 0.86}, prod({"accuracy": 0.9})
    )
    beyond = evaluate_gate(
        gate(ACCURACY, tolerance=0.05), {"accuracy": 0.84}, prod({"accuracy": 0.9})
    )
    rmse_within = evaluate_gate(gate(RMSE, tolerance=0.5), {"rmse": 1.6}, prod({"rmse": 1.2}))
    assert within.passed
    assert not beyond.passed
    assert rmse_within.passed


def test_no_production_comparison_when_disabled():
    result = evaluate_gate(
        gate(ACCURACY, compare=False), {"accuracy": 0.85}, prod({"accuracy": 0.99})
    )
    assert result.passed
    assert all("production" not in check.name for check in result.checks)


def test_no_production_model_means_no_comparison():
    result = evaluate_gate(gate(ACCURACY), {"accuracy": 0.85}, None)
    assert [check.name for check in result.checks] == ["accuracy >= 0.8"]


def test_production_without_the_metric_is_noted_not_failed():
    result = evaluate_gate(gate(ACCURACY), {"accuracy": 0.85}, prod({"f1": 0.9}))
    comparison = result.checks[-1]
    assert comparison.passed
    assert "no usable accuracy" in comparison.message


def test_missing_candidate_metric_is_not_also_compared_with_production():
    result = evaluate_gate(gate(ACCURACY), {}, prod({"accuracy": 0.9}))
    assert len(result.checks) == 1


def test_junit_xml_has_one_case_per_check_and_failures_with_messages():
    result = evaluate_gate(gate(ACCURACY, RMSE), {"accuracy": 0.7, "rmse": 1.0}, None)
    root = ET.fromstring(gate_junit_xml(result, "churn quality gate"))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "churn quality gate"
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == ["accuracy >= 0.8", "rmse <= 2"]
    failure = cases[0].find("failure")
    assert failure is not None
    assert "required at least 0.8" in failure.get("message", "")
    assert cases[1].find("failure") is None


def test_junit_xml_escapes_markup_and_control_characters():
    hostile = 'a<b>&"c"\x01'
    result = GateResult(passed=False, checks=(Check(hostile, False, hostile),))
    text = gate_junit_xml(result, hostile)
    root = ET.fromstring(text)  # would raise if anything was pasted unescaped
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == 'a<b>&"c"\N{REPLACEMENT CHARACTER}'


@pytest.mark.parametrize("passed", [True, False])
def test_summary_states_verdict_and_each_check(passed):
    metrics = {"accuracy": 0.9 if passed else 0.5}
    text = summary(evaluate_gate(gate(ACCURACY), metrics, None))
    first, *rest = text.splitlines()
    assert ("PASSED" in first) == passed
    assert ("FAILED" in first) != passed
    assert len(rest) == 1
    assert rest[0].strip().startswith("[PASS]" if passed else "[FAIL]")


def test_the_reference_is_the_stand_named_not_a_stand_called_production():
    result = evaluate_gate(gate(ACCURACY), {"accuracy": 0.85}, Served("prod", {"accuracy": 0.9}))
    assert failed_names(result) == ["accuracy vs prod"]
    assert "worse than prod's 0.9" in result.checks[-1].message
