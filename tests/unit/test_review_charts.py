"""One small Mermaid chart per gated metric: the stand's versions and the candidate, the
threshold as a line, and a table with the very numbers the chart draws."""

from __future__ import annotations

import math
import re

from modelci.config.types import MetricThreshold
from modelci.review.charts import MAX_HISTORY, metric_history, render_metric_chart
from modelci.review.markdown import shown

ACCURACY = MetricThreshold(name="accuracy", min=0.7)
BAND = MetricThreshold(name="ratio", min=0.2, max=0.4)


def test_versions_in_order_then_the_candidate_missing_values_left_out():
    history = metric_history(
        ACCURACY, [("10", 0.8), ("2", 0.75), ("3", None), ("4", math.nan)], 0.9
    )
    assert [(p.label, p.value) for p in history.points] == [
        ("v2", 0.75),
        ("v10", 0.8),
        ("candidate", 0.9),
    ]


def test_only_the_newest_versions_are_drawn():
    versions = [(str(n), 0.5 + n / 100) for n in range(1, MAX_HISTORY + 4)]
    history = metric_history(ACCURACY, versions, None)
    assert history.left_out == 3 and len(history.points) == MAX_HISTORY
    assert history.points[0].label == "v4"
    assert "(3 older versions of `production` not drawn.)" in "\n".join(
        render_metric_chart(history, "production")
    )


def test_chart_draws_bars_and_a_line_per_bound_and_its_table_holds_the_same_numbers():
    lines = render_metric_chart(metric_history(BAND, [("1", 0.25)], 0.3333333), "production")
    text = "\n".join(lines)
    block = re.search(r"```mermaid\n(.*?)\n```", text, re.DOTALL).group(1).splitlines()
    assert block[0].startswith("%%{init:") and block[1] == "xychart-beta"
    assert block[2] == '    title "ratio by production version"'
    assert block[3] == '    x-axis ["v1", "candidate"]'
    assert block[5:] == ["    bar [0.25, 0.3333]", "    line [0.2, 0.2]", "    line [0.4, 0.4]"]
    low, high = re.fullmatch(r'    y-axis "ratio" (\S+) --> (\S+)', block[4]).groups()
    assert float(low) < 0.2 and float(high) > 0.4  # the lines are inside the axis
    assert "| `ratio` | v1 | candidate |" in text
    assert "| value | 0.25 | 0.3333 |" in text
    assert "| min (line) | 0.2 | 0.2 |" in text and "| max (line) | 0.4 | 0.4 |" in text


def test_nothing_to_draw_draws_nothing():
    assert render_metric_chart(metric_history(ACCURACY, [], None), "production") == []


def test_numbers_are_plain_decimals_mermaid_reads():
    assert shown(1.234e-05) == "0.00001234"
    assert shown(12345678.0) == "12350000"
    assert shown(-0.0) == "0" and shown(None) == "—" and shown(math.inf) == "—"
    assert shown(0.1 + 0.2) == "0.3"


def test_hostile_metric_name_cannot_leave_the_label():
    hostile = MetricThreshold(name='acc"] --> x\n%%{init}%%', min=0.5)
    text = "\n".join(render_metric_chart(metric_history(hostile, [], 0.6), "prod"))
    block = re.search(r"```mermaid\n(.*?)\n```", text, re.DOTALL).group(1).splitlines()
    for line in block[2:]:
        assert line.count('"') % 2 == 0 and "%%" not in line and "\\n" not in line, line
