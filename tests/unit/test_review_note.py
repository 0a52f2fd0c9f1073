"""The review's parts in the merge request note: each shown or said unavailable with its
reason, the time each took, the contract verdict, and the bound on the note's size."""

from __future__ import annotations

import re
from dataclasses import replace

from modelci.review.behaviour import Row, compare_predictions
from modelci.review.contract import ACK_LABEL, Acknowledgement
from modelci.review.note import MAX_NOTE_CHARS, render_log, render_note
from modelci.review.parts import Part
from tests.unit.review_samples import CONTEXT, full_comparison, full_review


def test_every_part_is_in_the_note_and_the_log_says_how_long_each_took():
    note = render_note(CONTEXT, [full_comparison()])
    for heading in (
        "##### Input contract against `production v3`",
        "##### Behaviour against `production v3` on the same rows",
        "##### Cost of serving",
        "##### Gated metrics across `production`'s versions",
        "##### What changed against `production v3`",
    ):
        assert heading in note
    log = render_log(CONTEXT, [full_comparison()])
    assert (
        "review against production v3 (time taken: contract 0.2 s, behaviour and cost 14.5 s, "
        "changes 0.4 s, charts 0.3 s):"
    ) in log
    assert "time taken" not in note.lower()  # the note does not change with the timings
    assert note.count("```mermaid\n") == 3  # one chart per gated metric
    assert "| 1 row p50 | 2.75 ms | 52.8 ms | 19.2x |" in note
    assert "| model size | 9 KB | 40 MB | 4444x |" in note


def test_a_part_that_could_not_be_computed_says_why():
    review = replace(
        full_review(),
        cost=Part(
            "behaviour and cost", 300.0, reason="the candidate model's server was not ready in time"
        ),
        behaviour=Part(
            "behaviour and cost", 300.0, reason="the candidate model's server was not ready in time"
        ),
    )
    note = render_note(CONTEXT, [full_comparison(review)])
    assert note.count("Not available: `the candidate model's server was not ready in time`") == 2
    log = render_log(CONTEXT, [full_comparison(review)])
    assert "behaviour and cost (300.0 s): not available: the candidate model's server" in log


def test_unacknowledged_breaking_change_of_an_online_model_fails_the_check():
    failing = full_comparison()
    assert failing.contract_failure() == [
        "input `tenure` is removed",
        "input `tenure_months` is new and required",
    ]
    assert "BREAKING CHANGE, not acknowledged" in render_log(CONTEXT, [failing])
    acknowledged = full_comparison(full_review(ack=Acknowledgement(f"label {ACK_LABEL}")))
    assert acknowledged.contract_failure() == []
    assert f"breaking change acknowledged by the label {ACK_LABEL}" in render_log(
        CONTEXT, [acknowledged]
    )
    assert full_comparison(full_review(online=False)).contract_failure() == []


def test_the_note_stays_bounded_however_many_rows_differ():
    many = [Row("sample", i, {f"c{j}": "x" * 50 for j in range(20)}) for i in range(5000)]
    behaviour = compare_predictions(many, [True] * 5000, [False] * 5000)
    review = replace(full_review(), behaviour=Part("behaviour and cost", 1.0, behaviour))
    comparisons = [replace(full_comparison(review), model=f"m{i}") for i in range(40)]
    note = render_note(CONTEXT, comparisons)
    assert len(note) <= MAX_NOTE_CHARS
    assert note.count("```") % 2 == 0  # never cut inside a chart
    assert "left out to keep this note under" in note or "(cut:" in note


def test_no_raw_html_outside_code_spans_and_blocks():
    note = render_note(CONTEXT, [full_comparison()])
    prose = re.sub(r"```.*?```", "", note, flags=re.DOTALL)
    prose = re.sub(r"(`+).*?\1", "", prose)
    assert "<" not in prose
