"""The cost of serving, side by side: percentiles, ratios, the table, and the requests both
models get (each under its own column names and types)."""

from __future__ import annotations

from pathlib import Path

from modelci.lifecycle.measure import ServingInput, v2_request
from modelci.review.cost import ServingCost, percentile, ratio, render_cost


def test_nearest_rank_percentiles():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.95) == 5.0
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) is None


def test_ratio_only_against_a_positive_figure():
    assert ratio(30.0, 10.0) == "3x"
    assert ratio(1.0, 0.0) == "" and ratio(None, 1.0) == ""


def test_table_puts_production_first_and_the_ratio_last():
    ours = ServingCost(40_000_000, 4.0, [20.0, 30.0], [90.0], 45, 600_000_000)
    theirs = ServingCost(32_000, 2.0, [5.0, 6.0], [8.0], 45, None)
    text = "\n".join(render_cost(ours, theirs, "production v1"))
    assert "| model size | 32 KB | 40 MB | 1250x |" in text
    assert "| load time | 2 s | 4 s | 2x |" in text
    assert "| 1 row p50 | 5 ms | 20 ms | 4x |" in text
    assert "| 45 rows p95 | 8 ms | 90 ms | 11.25x |" in text
    assert "| peak memory | — | 600 MB |  |" in text  # unknown is shown as unknown
    assert "2 single and 1 batch requests each" in text


def test_each_model_gets_its_own_columns_and_signature_types():
    rows = [{"tenure": 1.5, "calls": 2, "plan": "a", "vip": True}]
    typed = ServingInput(
        "c", Path("."), "", ["calls", "tenure"], {"calls": "long", "tenure": "float"}
    )
    request = v2_request(typed, rows)
    assert request["parameters"] == {"content_type": "pd"}
    assert [(i["name"], i["datatype"], i["data"]) for i in request["inputs"]] == [
        ("calls", "INT64", [2]),
        ("tenure", "FP32", [1.5]),
    ]
    untyped = ServingInput("p", Path("."), "", ["plan", "vip", "tenure"], {})
    assert [i["datatype"] for i in v2_request(untyped, rows)["inputs"]] == ["BYTES", "BOOL", "FP64"]
