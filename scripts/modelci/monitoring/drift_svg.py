"""The picture of one monitoring check, an SVG file a person reads in seconds: the PSI of each
column against the `max_psi` line, then, per column, the reference's and today's share of each
bucket side by side.

Built from the figures alone, as plain SVG: no script, no style sheet or font from elsewhere,
every text from the data (column names, categories) escaped for XML, and characters XML cannot
carry dropped. Pure: returns the text; `commands/monitor.py` logs it to MLflow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.sax.saxutils import escape

from .drift import Distribution

WIDTH = 820
REFERENCE_COLOUR = "#4c78a8"
TODAY_COLOUR = "#f58518"
STABLE_COLOUR = "#54a24b"
DRIFTED_COLOUR = "#d62728"
MUTED_COLOUR = "#6b6b6b"
_LEFT = 230  # where the PSI bars start, after the column names
_ROW = 22
_PANEL_BARS = 110
_PANEL_LABELS = 80
# A bucket's label is drawn at -35 degrees under its bars: at 10 px, 20 characters reach about
# 65 px down, what _PANEL_LABELS leaves above the note. A longer one is cut; hovering shows it.
_MAX_BUCKET_LABEL = 20
_MAX_TEXT = 60
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def drift_svg(title: str, distributions: Sequence[Distribution], max_psi: float) -> str:
    """The whole picture: a title, the PSI bars, one panel per column."""
    parts: list[str] = [_text(12, 24, title, size=16, weight="bold"), *_legend(44)]
    y = 70
    section, height = _psi_section(y, distributions, max_psi)
    parts += section
    y += height + 20
    for distribution in distributions:
        panel, height = _panel(y, distribution, max_psi)
        parts += panel
        y += height + 16
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" '
            f'viewBox="0 0 {WIDTH} {y}" font-family="sans-serif" font-size="12">',
            f"<title>{_escape(title)}</title>",
            f'<rect x="0" y="0" width="{WIDTH}" height="{y}" fill="#ffffff"/>',
            *parts,
            "</svg>",
            "",
        ]
    )


def _legend(y: int) -> list[str]:
    items = [
        (REFERENCE_COLOUR, "reference (the data the model was trained on)"),
        (TODAY_COLOUR, "today"),
        (DRIFTED_COLOUR, "PSI above max_psi"),
        (STABLE_COLOUR, "PSI within max_psi"),
    ]
    parts, x = [], 12
    for colour, name in items:
        parts.append(_rect(x, y - 10, 12, 12, colour))
        parts.append(_text(x + 16, y, name))
        x += 28 + 7 * len(name)
    return parts


def _psi_section(
    y: int, distributions: Sequence[Distribution], max_psi: float
) -> tuple[list[str], int]:
    """One bar per column, on a scale that shows both small values and the threshold."""
    measured = [d.psi for d in distributions if d.psi is not None]
    top = max([2 * max_psi, *[min(value, 10 * max_psi) for value in measured]]) or 1.0
    span = WIDTH - _LEFT - 150

    def at(value: float) -> float:
        return _LEFT + span * min(value, top) / top

    parts = [_text(12, y, f"PSI per column (max_psi {max_psi:g})", size=14, weight="bold")]
    row_y = y + 12
    for distribution in distributions:
        parts.append(_text(_LEFT - 8, row_y + 15, distribution.column, anchor="end"))
        if distribution.psi is None:
            note = f"not measured: {distribution.note}"
            parts.append(_text(_LEFT, row_y + 15, note, colour=MUTED_COLOUR))
        else:
            value = distribution.psi
            colour = DRIFTED_COLOUR if value > max_psi else STABLE_COLOUR
            width = max(at(value) - _LEFT, 1.0)
            tip = f"PSI of {distribution.column}: {value:.4f} (max {max_psi:g})"
            parts.append(_rect(_LEFT, row_y + 4, width, _ROW - 8, colour, tip))
            beyond = " (off the scale)" if value > top else ""
            parts.append(_text(_LEFT + width + 6, row_y + 15, f"{value:.4f}{beyond}"))
        row_y += _ROW
    line = at(max_psi)
    parts.append(
        f'<line x1="{line:.1f}" y1="{y + 8}" x2="{line:.1f}" y2="{row_y + 4}" '
        f'stroke="{DRIFTED_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>'
    )
    parts.append(_text(line + 4, row_y + 18, f"max_psi {max_psi:g}", colour=DRIFTED_COLOUR))
    return parts, row_y + 24 - y


def _panel(y: int, distribution: Distribution, max_psi: float) -> tuple[list[str], int]:
    """The reference's and today's share of each bucket of one column, side by side."""
    verdict = "not measured" if distribution.psi is None else f"PSI {distribution.psi:.4f}"
    if distribution.psi is not None:
        verdict += " > max_psi" if distribution.psi > max_psi else " <= max_psi"
    heading = f"{distribution.column} ({distribution.kind}): {verdict}"
    parts = [_text(12, y + 14, heading, size=13, weight="bold")]
    if not distribution.labels:
        parts.append(_text(24, y + 34, distribution.note, colour=MUTED_COLOUR))
        return parts, 44
    base = y + 26 + _PANEL_BARS
    highest = max([*distribution.reference, *distribution.current, 0.01])
    slot = (WIDTH - 80) / len(distribution.labels)
    bar = max(min(slot / 2 - 3, 40), 1.5)
    buckets = zip(distribution.labels, distribution.reference, distribution.current, strict=True)
    for index, (label, before, now) in enumerate(buckets):
        x = 60 + index * slot + slot / 2
        tip = f"{label}: reference {before:.2%}, today {now:.2%}"
        for offset, share, colour in ((-bar, before, REFERENCE_COLOUR), (0, now, TODAY_COLOUR)):
            height = _PANEL_BARS * share / highest
            parts.append(_rect(x + offset, base - height, bar, height, colour, tip))
        shown = label if len(label) <= _MAX_BUCKET_LABEL else label[: _MAX_BUCKET_LABEL - 1] + "…"
        parts.append(
            _text(x, base + 12, shown, anchor="end", size=10, rotate=(-35, x, base + 12), tip=tip)
        )
    parts.append(
        f'<line x1="56" y1="{base}" x2="{WIDTH - 16}" y2="{base}" stroke="{MUTED_COLOUR}"/>'
    )
    parts.append(_text(52, y + 34, f"{highest:.0%}", anchor="end", size=10, colour=MUTED_COLOUR))
    if distribution.note:
        parts.append(_text(24, base + _PANEL_LABELS, distribution.note, colour=MUTED_COLOUR))
    return parts, base - y + _PANEL_LABELS + 8


def _rect(x: float, y: float, width: float, height: float, colour: str, tip: str = "") -> str:
    title = f"<title>{_escape(tip)}</title>" if tip else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'fill="{colour}">{title}</rect>'
    )


def _text(
    x: float,
    y: float,
    content: str,
    *,
    size: int = 12,
    weight: str = "normal",
    anchor: str = "start",
    colour: str = "#222222",
    rotate: tuple[float, float, float] | None = None,
    tip: str = "",
) -> str:
    turn = f' transform="rotate({rotate[0]} {rotate[1]:.1f} {rotate[2]:.1f})"' if rotate else ""
    title = f"<title>{_escape(tip)}</title>" if tip else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-weight="{weight}" '
        f'text-anchor="{anchor}" fill="{colour}"{turn}>{title}{_escape(_shorten(content))}</text>'
    )


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_TEXT * 2 else text[: _MAX_TEXT * 2 - 3] + "..."


def _escape(text: str) -> str:
    """Text for an XML element or attribute: the characters XML 1.0 cannot carry dropped."""
    return escape(_XML_INVALID.sub("", text), {'"': "&quot;", "'": "&apos;"})
