"""The review note as GitLab shows it: rendered by headless Chromium with Mermaid's own
JavaScript and no network. Every chart is drawn, none with a parse error, and each draws the
numbers of its table; metrics of very different scales each get their own axis."""

from __future__ import annotations

from pathlib import Path

from modelci.config.types import MetricThreshold
from modelci.review.charts import metric_history
from modelci.review.note import render_note
from modelci.review.parts import Part
from tests.harness.browser import ARTIFACTS
from tests.unit.review_samples import CONTEXT, full_comparison, full_review

from .note_html import assert_note_renders


def test_the_full_review_note_renders_every_chart_with_its_numbers(tmp_path: Path) -> None:
    note = render_note(CONTEXT, [full_comparison()])

    dom = assert_note_renders(note, ARTIFACTS / "review" / "full-note.png", tmp_path / "note.html")

    assert "<table>" in dom and "Agreement with" in dom
    assert dom.count('class="mermaid"') == 3


def test_awkward_values_still_draw(tmp_path: Path) -> None:
    """Negative values, tiny ones, a single point, equal values and a hostile metric name."""
    thresholds = (
        MetricThreshold(name="delta", min=-0.5),
        MetricThreshold(name="tiny_error", max=0.00002),
        MetricThreshold(name='x"]; %%{init}%% --> y', min=1.0),
    )
    histories = (
        metric_history(thresholds[0], [("1", -0.75), ("2", -0.25)], 0.125),
        metric_history(thresholds[1], [("7", 0.0000123)], 0.0000123),
        metric_history(thresholds[2], [], 1.0),
    )
    review = full_review()
    review = type(review)(**{**review.__dict__, "charts": Part("charts", 0.1, histories)})
    comparison = full_comparison(review)
    comparison = type(comparison)(**{**comparison.__dict__, "thresholds": thresholds})

    assert_note_renders(
        render_note(CONTEXT, [comparison]),
        ARTIFACTS / "review" / "awkward-values.png",
        tmp_path / "note.html",
    )
