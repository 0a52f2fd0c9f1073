"""The merge request note's comparison with the stands: deltas, marks, missing data, escaping.
The review against production (contract, behaviour, cost, changes, charts): test_review_*.py."""

from __future__ import annotations

import math
import re

import pytest

from modelci.config.types import MetricThreshold
from modelci.review.note import (
    BETTER,
    SAME,
    UNKNOWN,
    WORSE,
    Candidate,
    Link,
    ModelComparison,
    NoteContext,
    Promotion,
    StandModel,
    compare_metric,
    md_code,
    md_url,
    mermaid_label,
    render_log,
    render_note,
)

ACCURACY = MetricThreshold(name="accuracy", min=0.8)
RMSE = MetricThreshold(name="rmse", max=2.0)
BAND = MetricThreshold(name="ratio", min=0.2, max=0.4)
CONTEXT = NoteContext(
    branch="feature/x",
    environment="b-feature-x-0123456789",
    commit="a" * 40,
    pipeline_url="https://gitlab.example.com/ml/churn/-/pipelines/42",
    gitlab_environment_url="https://gitlab.example.com/ml/churn/-/environments?search=review%2Ffeature%2Fx",
)


def candidate(**metrics: float) -> Candidate:
    return Candidate(
        run_id="c" * 32,
        run_url="https://mlflow.example.com/#/experiments/1/runs/" + "c" * 32,
        metrics=metrics,
        gate="passed",
        gate_reasons="all checks passed",
    )


def stand(name: str, version: str | None, **metrics: float) -> StandModel:
    if version is None:
        return StandModel(stand=name, version=None)
    return StandModel(
        stand=name,
        version=version,
        run_id="s" * 32,
        run_url=f"https://mlflow.example.com/#/experiments/1/runs/{name}",
        metrics=metrics,
    )


def comparison(
    thresholds=(ACCURACY, RMSE),
    cand: Candidate | None = None,
    stands=(),
    promotion: Promotion | None = None,
    model: str = "churn",
    **kwargs,
) -> ModelComparison:
    return ModelComparison(
        model=model,
        registered_model="ml-churn-abcdef.churn",
        thresholds=thresholds,
        candidate=cand,
        stands=stands,
        promotion=promotion,
        **kwargs,
    )


def table_rows(note: str) -> list[list[str]]:
    """Cells of every table row, split on unescaped pipes (as GitLab's tables do)."""
    rows = []
    for line in note.splitlines():
        if line.startswith("| "):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            rows.append([cell.strip() for cell in cells])
    return rows


def mermaid_blocks(note: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)\n```", note, flags=re.DOTALL)


# --- deltas and marks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "cand", "served", "verdict"),
    [
        (ACCURACY, 0.9, 0.85, BETTER),  # min: higher is better
        (ACCURACY, 0.8, 0.85, WORSE),
        (RMSE, 1.0, 1.5, BETTER),  # only max: lower is better
        (RMSE, 1.8, 1.5, WORSE),
        (BAND, 0.35, 0.3, BETTER),  # min and max: min decides, as in the gate
        (ACCURACY, 0.85, 0.85, SAME),
        (MetricThreshold(name="score"), 2.0, 1.0, BETTER),  # no bound: as the gate, higher
    ],
)
def test_delta_is_judged_by_the_gate_direction(threshold, cand, served, verdict):
    delta = compare_metric(threshold, cand, served)
    assert delta.verdict == verdict
    assert delta.delta == pytest.approx(cand - served)


@pytest.mark.parametrize(("cand", "served"), [(None, 0.5), (0.5, None), (math.nan, 0.5)])
def test_missing_or_nan_value_has_no_delta(cand, served):
    delta = compare_metric(ACCURACY, cand, served)
    assert delta.verdict == UNKNOWN and delta.delta is None


def test_table_shows_values_signed_delta_and_mark_per_stand():
    note = render_note(
        CONTEXT,
        [
            comparison(
                cand=candidate(accuracy=0.9, rmse=1.2),
                stands=(
                    stand("staging", "3", accuracy=0.85, rmse=1.0),
                    stand("production", "2", accuracy=0.95, rmse=1.5),
                ),
                promotion=Promotion("staging", "4", already_registered=False),
            )
        ],
    )
    header, _, accuracy, rmse = table_rows(note)
    assert header == [
        "metric",
        "goal",
        "candidate",
        "`staging v3`",
        "Δ vs `staging`",
        "`production v2`",
        "Δ vs `production`",
    ]
    assert accuracy[:3] == ["`accuracy`", "higher is better (≥ 0.8)", "0.9"]
    assert accuracy[3:] == ["0.85", "+0.05 ✅ better", "0.95", "-0.05 ❌ worse"]
    assert rmse[1] == "lower is better (≤ 2)"
    assert rmse[3:] == ["1", "+0.2 ❌ worse", "1.5", "-0.3 ✅ better"]


def test_stand_serving_nothing_and_metric_missing_are_shown_not_guessed():
    note = render_note(
        CONTEXT,
        [
            comparison(
                cand=candidate(accuracy=0.9),  # rmse was not logged
                stands=(stand("staging", None), stand("production", "1", accuracy=0.9)),
                promotion=Promotion("staging", "2", already_registered=False),
            )
        ],
    )
    header, _, accuracy, rmse = table_rows(note)
    assert header[3] == "`staging (nothing)`"
    assert accuracy[3:] == ["—", "n/a", "0.9", "+0 = same"]
    assert rmse[2] == "—"
    assert rmse[3:] == ["—", "n/a", "—", "n/a"]
    log = render_log(
        CONTEXT, [comparison(cand=candidate(accuracy=0.9), stands=(stand("staging", None),))]
    )
    assert "staging: serves nothing" in log


# --- what a merge does ----------------------------------------------------------------------


def test_promotion_names_the_first_stand_version_and_registered_model():
    note = render_note(
        CONTEXT,
        [
            comparison(
                cand=candidate(accuracy=0.9, rmse=1.0),
                stands=(stand("staging", "3", accuracy=0.8, rmse=1.0),),
                promotion=Promotion("staging", "4", already_registered=False),
            )
        ],
    )
    assert "**On merge**: `staging` will serve version **4** of `ml-churn-abcdef.churn`" in note
    assert "Candidate: run [`cccccccccccc`](https://mlflow.example.com/" in note
    assert "quality gate ✅ **passed**: `all checks passed`" in note


def test_promotion_of_an_already_served_or_manual_or_failed_candidate():
    served = comparison(
        cand=candidate(accuracy=0.9),
        stands=(StandModel("production", "5", run_id="c" * 32, metrics={"accuracy": 0.9}),),
        promotion=Promotion("production", "5", already_registered=True),
    )
    assert "`production` already serves version 5" in render_note(CONTEXT, [served])
    failed = Candidate("r1", "", {}, gate="failed", gate_reasons="accuracy >= 0.8: too low")
    manual = comparison(
        cand=failed,
        stands=(stand("staging", None),),
        promotion=Promotion("staging", "1", already_registered=False, manual=True),
    )
    note = render_note(CONTEXT, [manual])
    assert "version **1**" in note and "manual promotion job" in note
    assert "❌ **failed**: `accuracy >= 0.8: too low`" in note
    assert "did not pass the quality gate" in note


def test_no_candidate_says_why_and_promotes_nothing():
    note = render_note(
        CONTEXT,
        [comparison(no_candidate_reason="no run to serve for environment 'b-x'")],
    )
    assert "**No candidate**: `no run to serve for environment 'b-x'`" in note
    assert "**On merge**: nothing is promoted" in note
    assert "```mermaid" not in note  # nothing to draw


# --- links ----------------------------------------------------------------------------------


def test_links_of_candidate_stands_dags_api_and_environment():
    note = render_note(
        CONTEXT,
        [
            comparison(
                cand=candidate(accuracy=0.9),
                stands=(stand("production", "2", accuracy=0.8),),
                promotion=Promotion("production", "3", already_registered=False),
                links=(
                    Link("Airflow DAG inference", "https://airflow.example.com/dags/p__b-x__c__i"),
                    Link("model API", "https://churn.example.com/v2/models/churn/infer"),
                    Link("not a web link", "javascript:alert(1)"),
                ),
            )
        ],
    )
    (links,) = [line for line in note.splitlines() if line.startswith("Links: ")]
    assert "[`candidate run (MLflow)`](https://mlflow.example.com/#/experiments/1/runs/" in links
    assert "[`production v2 run (MLflow)`](https://mlflow.example.com/" in links
    assert "[`Airflow DAG inference`](https://airflow.example.com/dags/p__b-x__c__i)" in links
    assert "[`model API`](https://churn.example.com/v2/models/churn/infer)" in links
    assert "[`GitLab environment`](https://gitlab.example.com/ml/churn/-/environments" in links
    assert "javascript:" not in note and "`not a web link`" in links


# --- escaping -------------------------------------------------------------------------------

HOSTILE = "a|b`c``d\n| x | y |\n-->\"'<!-- @all #1 [x](javascript:1) </table>"


def test_code_span_survives_backticks_pipes_and_newlines():
    span = md_code(HOSTILE)
    assert "\n" not in span
    assert span.startswith("```") and span.endswith("```")  # longer than the `` inside
    assert re.search(r"(?<!\\)\|", span) is None  # every pipe escaped
    assert md_code("`x`") == "`` `x` ``"
    assert md_code("") == "*(empty)*"


def test_hostile_names_cannot_break_the_table_the_note_or_the_chart():
    hostile_metric = MetricThreshold(name=HOSTILE, min=0.5)
    note = render_note(
        NoteContext(branch=HOSTILE, environment="b-x", commit="", pipeline_url=""),
        [
            comparison(
                thresholds=(hostile_metric, ACCURACY),
                cand=candidate(**{HOSTILE: 0.7, "accuracy": 0.9}),
                stands=(stand("production", "1", **{HOSTILE: 0.6, "accuracy": 0.8}),),
                promotion=Promotion("production", "2", already_registered=False),
                model=HOSTILE,
                no_candidate_reason="",
            )
        ],
    )
    rows = table_rows(note)
    assert all(len(row) == len(rows[0]) for row in rows), rows  # no extra cells
    assert len(rows) == 4  # header, delimiter, two metrics: no row was injected
    assert rows[2][4] == "+0.1 ✅ better"
    # No raw HTML, no live comment, no unfenced mention outside code spans.
    outside_code = re.sub(r"(`+).*?\1", "", note)
    assert "<" not in outside_code.replace("<!--", "") and "<!--" not in outside_code
    assert "@all" not in outside_code and "javascript" not in outside_code
    assert mermaid_blocks(note) == []  # no review: no chart
    # Each user string stayed on one line of the note.
    assert not any(line.startswith("| x | y |") for line in note.splitlines())


def test_mermaid_labels_are_quoted_whitelisted_and_short():
    assert mermaid_label('acc"uracy --> x`y') == '"acc_uracy --_ x_y"'
    assert mermaid_label("x" * 100) == '"' + "x" * 38 + '.."'
    assert mermaid_label("line\nbreak") == '"line_nbreak"'


def test_urls_are_only_http_and_cannot_end_the_link():
    assert md_url("https://h/a b)c|d") == "https://h/a%20b%29c%7Cd"
    assert md_url("javascript:alert(1)") is None
    assert md_url("s3://bucket/key") is None


def test_log_lists_every_metric_with_delta_and_verdict():
    log = render_log(
        CONTEXT,
        [
            comparison(
                cand=candidate(accuracy=0.9, rmse=1.0),
                stands=(stand("production", "2", accuracy=0.95, rmse=1.5),),
                promotion=Promotion("production", "3", already_registered=False),
            )
        ],
    )
    assert "on merge: production will serve version 3 of ml-churn-abcdef.churn" in log
    assert re.search(r"accuracy .* delta\s+-0.05\s+worse", log)
    assert re.search(r"rmse .* delta\s+-0.5\s+better", log)
    assert "candidate run: https://mlflow.example.com/" in log
    log = render_log(NoteContext(branch="x\n\x1b[0Ksection_end", environment="b-x"), [])
    assert "\x1b" not in log and "\n" not in log
