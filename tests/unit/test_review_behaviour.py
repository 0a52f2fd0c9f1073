"""Predictions of both models on the same rows: agreement for labels, the distribution of
differences for numbers, the rows that differ most."""

from __future__ import annotations

import pytest

from modelci.review.behaviour import (
    CLASSIFICATION,
    MAX_SHOWN_ROWS,
    REGRESSION,
    Row,
    compare_predictions,
    render_behaviour,
)


def rows(count: int, source: str = "input example") -> list[Row]:
    return [Row(source, i, {"x": float(i), "name": f"r{i}"}) for i in range(count)]


def test_labels_give_the_agreement_rate_and_the_disagreeing_rows():
    behaviour = compare_predictions(rows(4), [True, False, True, True], [True, True, True, False])
    assert behaviour.kind == CLASSIFICATION
    assert behaviour.agreement == pytest.approx(0.5)
    assert [d.row.index for d in behaviour.differing] == [1, 3]
    text = "\n".join(render_behaviour(behaviour, "production v2"))
    assert "Agreement with `production v2`: **50.0 %** (2 of 4 rows)." in text
    assert "| `input example` #1 | `x=1, name=r1` | `False` | `True` |" in text


def test_tensor_rows_of_one_value_compare_as_that_value():
    behaviour = compare_predictions(rows(2), [[1], [0]], [[1], [1]])
    assert behaviour.kind == CLASSIFICATION and behaviour.agreement == pytest.approx(0.5)


def test_numbers_give_the_difference_distribution_and_the_largest_first():
    ours = [1.0, 2.0, 3.5, 10.0]
    theirs = [1.0, 2.5, 3.0, 4.0]
    behaviour = compare_predictions(rows(4), ours, theirs)
    assert behaviour.kind == REGRESSION and behaviour.agreement is None
    assert behaviour.differences == {
        "mean": pytest.approx(1.5),
        "p50 absolute": pytest.approx(0.5),
        "p95 absolute": pytest.approx(6.0),
        "max absolute": pytest.approx(6.0),
    }
    assert [d.row.index for d in behaviour.differing] == [3, 1, 2]  # equal rows left out
    text = "\n".join(render_behaviour(behaviour, "production v2"))
    assert "| candidate minus production | 1.5 | 0.5 | 6 | 6 |" in text
    assert "| `input example` #3 | `x=3, name=r3` | `10` | `4` | +6 |" in text


def test_rows_shown_are_bounded_and_sources_counted():
    many = rows(30) + rows(10, "sample")
    behaviour = compare_predictions(many, [True] * 40, [False] * 40)
    assert len(behaviour.differing) == MAX_SHOWN_ROWS
    assert behaviour.sources == {"input example": 30, "sample": 10}
    text = "\n".join(render_behaviour(behaviour, "production v2"))
    assert (
        "Both models predicted on the same 40 rows (30 from the input example, 10 from the sample)."
        in text
    )
    assert f"(first {MAX_SHOWN_ROWS} of 40)" in text


def test_mismatched_lengths_are_a_bug_not_a_result():
    with pytest.raises(ValueError, match="3 rows but 2 candidate"):
        compare_predictions(rows(3), [1, 2], [1, 2, 3])


def test_a_renamed_column_is_said_to_be_given_under_its_old_name():
    behaviour = compare_predictions(rows(1), [True], [True], {"tenure": "tenure_months"})
    text = "\n".join(render_behaviour(behaviour, "production v2"))
    assert "`production v2` was given `tenure_months` as `tenure`." in text
