"""The quality gate: does a training run's metrics meet the thresholds in `mlops.yaml`?

Pure: takes the metrics as plain mappings and returns a result the CLI prints, writes as a
JUnit report (GitLab shows failed checks in the merge request widget) and records as run tags.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..config.types import Gate, MetricThreshold

# Characters XML 1.0 cannot carry at all, even escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Check:
    name: str  # e.g. "accuracy >= 0.8", "accuracy vs prod"
    passed: bool
    message: str  # what was compared and the outcome, readable on its own


@dataclass(frozen=True)
class Served:
    """What the last stand of mlops.yaml serves, whatever it is called: the gate's reference."""

    stand: str
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: tuple[Check, ...]

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)


def evaluate_gate(
    gate: Gate,
    metrics: Mapping[str, float],
    served: Served | None,
) -> GateResult:
    """Check every threshold, and compare with what the last stand serves when asked to and
    it serves something."""
    checks: list[Check] = []
    for threshold in gate.metrics:
        if threshold.name not in metrics:
            checks.append(_missing_metric_check(threshold.name, metrics))
            continue
        value = metrics[threshold.name]
        checks.extend(_threshold_checks(threshold, value))
        if gate.compare_with_production and served is not None:
            checks.append(_served_check(threshold, value, served, gate.tolerance))
    return GateResult(passed=all(check.passed for check in checks), checks=tuple(checks))


def higher_is_better(threshold: MetricThreshold) -> bool:
    """A metric with a `min` should go up; one with only a `max` (a loss, an error) down."""
    return threshold.min is not None or threshold.max is None


def _missing_metric_check(name: str, metrics: Mapping[str, float]) -> Check:
    logged = ", ".join(sorted(metrics)) if metrics else "none"
    return Check(
        name=f"{name} logged",
        passed=False,
        message=(
            f"metric '{name}' was not logged by the training run (metrics it logged: {logged}); "
            f"log it with mlflow.log_metric('{name}', value) or fix the name in mlops.yaml"
        ),
    )


def _threshold_checks(threshold: MetricThreshold, value: float) -> list[Check]:
    checks = []
    if threshold.min is not None:
        passed = value >= threshold.min  # False for NaN, which must not pass
        checks.append(
            Check(
                name=f"{threshold.name} >= {threshold.min:g}",
                passed=passed,
                message=f"{threshold.name} = {value:g}, required at least {threshold.min:g}",
            )
        )
    if threshold.max is not None:
        passed = value <= threshold.max
        checks.append(
            Check(
                name=f"{threshold.name} <= {threshold.max:g}",
                passed=passed,
                message=f"{threshold.name} = {value:g}, required at most {threshold.max:g}",
            )
        )
    return checks


def _served_check(
    threshold: MetricThreshold,
    value: float,
    served: Served,
    tolerance: float,
) -> Check:
    name = f"{threshold.name} vs {served.stand}"
    reference = served.metrics.get(threshold.name)
    if reference is None or not math.isfinite(reference):
        return Check(
            name=name,
            passed=True,
            message=f"the model {served.stand} serves has no usable {threshold.name}; not compared",
        )
    if higher_is_better(threshold):
        limit = reference - tolerance
        passed = value >= limit
        direction = "higher is better"
    else:
        limit = reference + tolerance
        passed = value <= limit
        direction = "lower is better"
    verdict = "not worse than" if passed else "worse than"
    return Check(
        name=name,
        passed=passed,
        message=(
            f"{threshold.name} = {value:g} is {verdict} {served.stand}'s {reference:g} "
            f"with tolerance {tolerance:g} ({direction}, limit {limit:g})"
        ),
    )


def gate_junit_xml(result: GateResult, suite_name: str) -> str:
    """A JUnit report with one test case per check, for GitLab's `artifacts:reports:junit`."""
    return gate_junit_report([(suite_name, result)])


def gate_junit_report(suites: Sequence[tuple[str, GateResult]]) -> str:
    """One JUnit report holding a <testsuite> per (name, result): one per model."""
    root = ET.Element("testsuites")
    for suite_name, result in suites:
        _add_suite(root, suite_name, result)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _add_suite(root: ET.Element, suite_name: str, result: GateResult) -> None:
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _xml_text(suite_name),
            "tests": str(len(result.checks)),
            "failures": str(len(result.failures)),
            "errors": "0",
            "skipped": "0",
        },
    )
    for check in result.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": _xml_text(suite_name), "name": _xml_text(check.name), "time": "0"},
        )
        if check.passed:
            ET.SubElement(case, "system-out").text = _xml_text(check.message)
        else:
            failure = ET.SubElement(
                case, "failure", {"message": _xml_text(check.message), "type": "QualityGate"}
            )
            failure.text = _xml_text(check.message)


def summary(result: GateResult) -> str:
    """Lines for the job log: the verdict first, then every check."""
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [
        f"Quality gate {verdict}: {len(result.checks) - len(result.failures)} of "
        f"{len(result.checks)} checks passed"
    ]
    for check in result.checks:
        mark = "PASS" if check.passed else "FAIL"
        lines.append(f"  [{mark}] {check.name}: {check.message}")
    return "\n".join(lines)


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("\N{REPLACEMENT CHARACTER}", text)
