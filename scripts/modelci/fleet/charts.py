"""Inline SVG charts of the fleet page: drawn from numbers, every label escaped, no script.

Each chart is an `<svg>` with `data-chart` naming its kind and a `class="mark"` on every drawn
value (a dot, a cell), so a reader (and the tests) can tell a chart that shows data from an
empty frame. Colours and sizes only; no fonts or files are fetched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .text import attr, text

WIDTH = 720
ROW_HEIGHT = 16
LABEL_WIDTH = 170
PLOT_HEIGHT = 140
MARGIN = 28
OK_COLOUR = (46, 160, 67)  # green
BAD_COLOUR = (207, 34, 46)  # red
NONE_COLOUR = "#d0d7de"
DECISION_COLOURS = {
    "triggered": "#8250df",
    "triggering": "#8250df",
    "trigger-failed": "#cf222e",
    "trigger-unknown": "#bf8700",
}
QUIET_DECISIONS = ("", "none")
SHADES = 8  # steps from green to red: cells of one step look alike, and merge
DOTS_AT_MOST = 120  # a line chart with more points draws the line, and dots only where it matters


@dataclass(frozen=True)
class Column:
    """One column of a time axis: its label and the retraining decision taken there."""

    label: str
    decision: str = ""


def _svg(kind: str, title: str, height: float, body: str, **data: str) -> str:
    extra = "".join(f' data-{key}="{attr(value)}"' for key, value in data.items())
    return (
        f'<svg class="chart" data-chart="{attr(kind)}"{extra} role="img" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{text(title)}</title>{body}</svg>'
    )


def _colour(value: float, limit: float) -> str:
    """Green up to half the limit, to red at and over it, in SHADES steps."""
    share = 0.0 if limit <= 0 else max(0.0, min(1.0, (value / limit - 0.5) * 2))
    share = round(share * SHADES) / SHADES
    pairs = zip(OK_COLOUR, BAD_COLOUR, strict=True)
    red, green, blue = (round(a + (b - a) * share) for a, b in pairs)
    return f"rgb({red},{green},{blue})"


def heat_map(
    kind: str,
    title: str,
    rows: Sequence[str],
    columns: Sequence[Column],
    values: Sequence[Sequence[float | None]],  # [row][column]
    limit: float | None,
) -> str:
    """Rows x columns of cells coloured against `limit` (over it: red, class `over`); a last
    row marks the retraining decisions on the same time axis. Neighbouring cells of a row
    with the same shade are one mark (`data-checks` says how many): a year of calm days is
    one rectangle, not 365, and a bad day still stands alone."""
    cell = (WIDTH - LABEL_WIDTH - 4) / max(1, len(columns))
    parts = []
    scale = limit if limit is not None else max((v for row in values for v in row if v), default=1)
    for index, (name, row) in enumerate(zip(rows, values, strict=True)):
        y = MARGIN + index * ROW_HEIGHT
        parts.append(f'<text x="4" y="{y + 12}" font-size="11">{text(name)}</text>')
        for first, last, shade, over in _runs(row, scale, limit):
            x = LABEL_WIDTH + first * cell
            span = [v for v in row[first : last + 1] if v is not None]
            when = columns[first].label
            if last > first:
                when = f"{when} to {columns[last].label}, {last - first + 1} checks"
            parts.append(
                f'<rect class="mark{" over" if over else ""}" data-checks="{last - first + 1}" '
                f'x="{x:.1f}" y="{y}" width="{cell * (last - first + 1):.2f}" '
                f'height="{ROW_HEIGHT - 2}" fill="{shade}"><title>{text(name)} {text(when)}: '
                f"{_span(span)}</title></rect>"
            )
    decisions_y = MARGIN + len(rows) * ROW_HEIGHT
    parts.append(_decision_row(columns, decisions_y, cell))
    parts.append(_axis(columns, decisions_y + ROW_HEIGHT + 12, cell))
    legend = f"limit {limit:g}" if limit is not None else "no limit known"
    parts.append(f'<text x="4" y="16" font-size="12">{text(title)} ({text(legend)})</text>')
    return _svg(kind, title, decisions_y + ROW_HEIGHT + 20, "".join(parts))


def _runs(row: Sequence[float | None], scale: float, limit: float | None):
    """(first column, last column, colour, over the limit) of each run of equal shades."""
    current = None
    for column, value in enumerate(row):
        key = None
        if value is not None:
            key = (_colour(value, scale), limit is not None and value > limit)
        if current is not None and key == current[2:] and column == current[1] + 1:
            current = (current[0], column, *key)
            continue
        if current is not None:
            yield current
        current = (column, column, *key) if key is not None else None
    if current is not None:
        yield current


def _span(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.4g}" if low == high else f"{low:.4g} to {high:.4g}"


def _decision_row(columns: Sequence[Column], y: float, cell: float) -> str:
    parts = [f'<text x="4" y="{y + 12}" font-size="11">retraining</text>']
    for index, column in enumerate(columns):
        if column.decision in QUIET_DECISIONS:
            continue
        colour = DECISION_COLOURS.get(column.decision, "#57606a")
        cx = LABEL_WIDTH + (index + 0.5) * cell
        parts.append(
            f'<circle class="decision" data-decision="{attr(column.decision)}" cx="{cx:.1f}" '
            f'cy="{y + 7}" r="{max(2.0, min(6.0, cell / 2)):.1f}" fill="{colour}">'
            f"<title>{text(column.label)}: {text(column.decision)}</title></circle>"
        )
    return "".join(parts)


def _axis(columns: Sequence[Column], y: float, cell: float) -> str:
    if not columns:
        return ""
    first, last = columns[0].label, columns[-1].label
    right = LABEL_WIDTH + len(columns) * cell
    return (
        f'<text x="{LABEL_WIDTH}" y="{y}" font-size="10">{text(first)}</text>'
        f'<text x="{right:.1f}" y="{y}" font-size="10" text-anchor="end">{text(last)}</text>'
    )


def line_chart(
    kind: str,
    title: str,
    columns: Sequence[Column],
    values: Sequence[float | None],
    minimum: float | None = None,
    maximum: float | None = None,
    **data: str,
) -> str:
    """Values over the columns as dots joined by a line, the bounds as dashed lines; dots
    outside a bound get class `over`; the retraining decisions as vertical marks."""
    known = [v for v in values if v is not None]
    bounds = [b for b in (minimum, maximum) if b is not None]
    low, high = min(known + bounds, default=0.0), max(known + bounds, default=1.0)
    if high - low < 1e-12:
        spread = abs(high) * 0.1 or 1.0
        low, high = low - spread, high + spread
    pad = (high - low) * 0.1
    low, high = low - pad, high + pad
    step = (WIDTH - LABEL_WIDTH - 10) / max(1, len(columns))
    top = MARGIN

    def y_of(value: float) -> float:
        return top + PLOT_HEIGHT * (high - value) / (high - low)

    def x_of(index: int) -> float:
        return LABEL_WIDTH + (index + 0.5) * step

    parts = [
        f'<text x="4" y="16" font-size="12">{text(title)}</text>',
        f'<text x="4" y="{top + 10}" font-size="10">{high:.4g}</text>',
        f'<text x="4" y="{top + PLOT_HEIGHT}" font-size="10">{low:.4g}</text>',
        f'<rect x="{LABEL_WIDTH}" y="{top}" width="{WIDTH - LABEL_WIDTH - 10}" '
        f'height="{PLOT_HEIGHT}" fill="none" stroke="{NONE_COLOUR}"/>',
    ]
    for name, bound in (("min", minimum), ("max", maximum)):
        if bound is not None:
            y = y_of(bound)
            parts.append(
                f'<line class="bound" data-bound="{name}" x1="{LABEL_WIDTH}" y1="{y:.1f}" '
                f'x2="{WIDTH - 10}" y2="{y:.1f}" stroke="{_hex(BAD_COLOUR)}" '
                f'stroke-dasharray="5 3"/><text x="{WIDTH - 12}" y="{y - 3:.1f}" '
                f'font-size="10" text-anchor="end">{name} {bound:g}</text>'
            )
    for index, column in enumerate(columns):
        if column.decision not in QUIET_DECISIONS:
            colour = DECISION_COLOURS.get(column.decision, "#57606a")
            x = x_of(index)
            parts.append(
                f'<line class="decision" data-decision="{attr(column.decision)}" x1="{x:.1f}" '
                f'y1="{top}" x2="{x:.1f}" y2="{top + PLOT_HEIGHT}" stroke="{colour}">'
                f"<title>{text(column.label)}: {text(column.decision)}</title></line>"
            )
    points = [(x_of(i), y_of(v)) for i, v in enumerate(values) if v is not None]
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline class="mark line" data-points="{len(points)}" points="{path}" '
            'fill="none" stroke="#0969da"/>'
        )
    every = len(values) <= DOTS_AT_MOST
    last = max((i for i, v in enumerate(values) if v is not None), default=-1)
    for index, value in enumerate(values):
        if value is None:
            continue
        over = (minimum is not None and value < minimum) or (
            maximum is not None and value > maximum
        )
        if not (every or over or index == last):
            continue
        parts.append(
            f'<circle class="mark{" over" if over else ""}" cx="{x_of(index):.1f}" '
            f'cy="{y_of(value):.1f}" r="3.5" fill="{_hex(BAD_COLOUR if over else OK_COLOUR)}">'
            f"<title>{text(columns[index].label)}: {value:.4g}</title></circle>"
        )
    parts.append(_axis(columns, top + PLOT_HEIGHT + 14, step))
    return _svg(kind, title, top + PLOT_HEIGHT + 22, "".join(parts), **data)


def _hex(colour: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{part:02x}" for part in colour)
