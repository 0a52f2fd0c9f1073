"""One small chart per gated metric: its value on each version the stand has served, then the
candidate's, with the gate's threshold as a line. Mermaid `xychart-beta` (GitLab renders it),
with a table holding the very numbers the chart draws.

Pure: values in, markdown out. Every label goes through `mermaid_label`, every number through
`shown`, so the chart and its table print the same strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config.types import MetricThreshold
from .markdown import md_code, mermaid_label, shown, table, usable

MAX_HISTORY = 8  # the stand's newest versions drawn; older ones are left out
CANDIDATE = "candidate"
# Small: a reviewer reads several side by side (Mermaid's default is 700 x 500).
_SIZE = '%%{init: {"xyChart": {"width": 420, "height": 220}}}%%'


@dataclass(frozen=True)
class Point:
    label: str  # "v3", or CANDIDATE
    value: float


@dataclass(frozen=True)
class MetricHistory:
    threshold: MetricThreshold
    points: tuple[Point, ...]  # oldest first, the candidate last
    left_out: int = 0  # older versions not drawn


def metric_history(
    threshold: MetricThreshold,
    versions: Sequence[tuple[str, float | None]],
    candidate: float | None,
) -> MetricHistory:
    """`versions`: (version number, the metric's value) of what the stand served, any order."""
    ordered = sorted(
        ((v, value) for v, value in versions if usable(value)), key=lambda item: int(item[0])
    )
    left_out = max(0, len(ordered) - MAX_HISTORY)
    points = [Point(f"v{v}", float(value)) for v, value in ordered[left_out:]]
    if usable(candidate):
        points.append(Point(CANDIDATE, float(candidate)))
    return MetricHistory(threshold, tuple(points), left_out)


def _bounds(threshold: MetricThreshold) -> list[tuple[str, float]]:
    bounds = []
    if threshold.min is not None:
        bounds.append(("min", threshold.min))
    if threshold.max is not None:
        bounds.append(("max", threshold.max))
    return bounds


def _axis(history: MetricHistory) -> tuple[str, str]:
    numbers = [p.value for p in history.points] + [v for _, v in _bounds(history.threshold)]
    low, high = min(numbers), max(numbers)
    pad = (high - low) * 0.15 or abs(high) * 0.1 or 1.0
    low = 0.0 if low >= 0 and low - pad < 0 else low - pad
    return shown(low), shown(high + pad)


def render_metric_chart(history: MetricHistory, stand: str) -> list[str]:
    """The chart and its table; [] when there is no value to draw."""
    if not history.points:
        return []
    threshold = history.threshold
    labels = ", ".join(mermaid_label(p.label) for p in history.points)
    low, high = _axis(history)
    lines = [
        "```mermaid",
        _SIZE,
        "xychart-beta",
        f"    title {mermaid_label(f'{threshold.name} by {stand} version', 60)}",
        f"    x-axis [{labels}]",
        f"    y-axis {mermaid_label(threshold.name, 24)} {low} --> {high}",
        f"    bar [{', '.join(shown(p.value) for p in history.points)}]",
    ]
    for _, bound in _bounds(threshold):
        lines.append(f"    line [{', '.join(shown(bound) for _ in history.points)}]")
    lines += ["```", ""]
    header = [md_code(threshold.name), *(p.label for p in history.points)]
    rows = [["value", *(shown(p.value) for p in history.points)]]
    rows += [
        [f"{which} (line)", *(shown(bound) for _ in history.points)]
        for which, bound in _bounds(threshold)
    ]
    lines += table(header, rows)
    if history.left_out:
        lines += [f"({history.left_out} older versions of {md_code(stand)} not drawn.)", ""]
    return lines
