"""How the candidate's predictions differ from production's on the same rows.

Pure: predictions in, a summary and its markdown out. Labels (booleans, integers, strings)
are compared as a classifier's: the share of rows where both agree. Other numbers as a
regression's: the distribution of candidate minus production, and the rows that differ most.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .markdown import cut, md_code, shown, signed, table, text_code

MAX_SHOWN_ROWS = 5
MAX_SHOWN_COLUMNS = 6
CLASSIFICATION, REGRESSION = "classification", "regression"


@dataclass(frozen=True)
class Row:
    source: str  # "input example", "sample", ...
    index: int  # within its source
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Differing:
    row: Row
    candidate: Any
    production: Any
    difference: float | None  # candidate minus production (regression only)


@dataclass(frozen=True)
class Behaviour:
    kind: str  # CLASSIFICATION or REGRESSION
    rows: int
    sources: Mapping[str, int]  # rows per source
    agreement: float | None  # share of equal predictions (classification)
    differences: Mapping[str, float]  # mean, p50/p95/max of the absolute (regression)
    differing: tuple[Differing, ...]  # the rows that differ most, at most MAX_SHOWN_ROWS
    renamed: Mapping[str, str]  # production's column -> the candidate's, as given


def _is_label(value: Any) -> bool:
    return isinstance(value, bool | str | int)


def _scalar(value: Any) -> Any:
    """A one-element list (a tensor row) as its element."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def compare_predictions(
    rows: Sequence[Row],
    candidate: Sequence[Any],
    production: Sequence[Any],
    renamed: Mapping[str, str] | None = None,
) -> Behaviour:
    if not (len(rows) == len(candidate) == len(production)):
        raise ValueError(
            f"{len(rows)} rows but {len(candidate)} candidate and {len(production)} production "
            "predictions"
        )
    ours = [_scalar(value) for value in candidate]
    theirs = [_scalar(value) for value in production]
    sources: dict[str, int] = {}
    for row in rows:
        sources[row.source] = sources.get(row.source, 0) + 1
    if all(_is_label(v) for v in ours + theirs):
        return _classification(rows, ours, theirs, sources, dict(renamed or {}))
    return _regression(rows, ours, theirs, sources, dict(renamed or {}))


def _classification(rows, ours, theirs, sources, renamed) -> Behaviour:
    differing = [
        Differing(row, a, b, None) for row, a, b in zip(rows, ours, theirs, strict=True) if a != b
    ]
    agreement = 1 - len(differing) / len(rows) if rows else None
    return Behaviour(
        CLASSIFICATION,
        len(rows),
        sources,
        agreement,
        {},
        tuple(differing[:MAX_SHOWN_ROWS]),
        renamed,
    )


def _regression(rows, ours, theirs, sources, renamed) -> Behaviour:
    pairs = []
    for row, a, b in zip(rows, ours, theirs, strict=True):
        difference = _difference(a, b)
        pairs.append(Differing(row, a, b, difference))
    numbers = [p.difference for p in pairs if p.difference is not None]
    magnitudes = sorted(abs(n) for n in numbers)
    stats = {}
    if numbers:
        stats = {
            "mean": sum(numbers) / len(numbers),
            "p50 absolute": _quantile(magnitudes, 0.5),
            "p95 absolute": _quantile(magnitudes, 0.95),
            "max absolute": magnitudes[-1],
        }
    unknown = [p for p in pairs if p.difference is None]
    ranked = sorted(
        (p for p in pairs if p.difference), key=lambda p: abs(p.difference), reverse=True
    )
    return Behaviour(
        REGRESSION,
        len(rows),
        sources,
        None,
        stats,
        tuple((unknown + ranked)[:MAX_SHOWN_ROWS]),
        renamed,
    )


def _difference(a: Any, b: Any) -> float | None:
    try:
        value = float(a) - float(b)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an ordered, non-empty list."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


# --- markdown -------------------------------------------------------------------------------


def render_behaviour(behaviour: Behaviour, production: str) -> list[str]:
    where = ", ".join(f"{count} from the {name}" for name, count in behaviour.sources.items())
    lines = [f"Both models predicted on the same {behaviour.rows} rows ({where}).", ""]
    if behaviour.renamed:
        pairs = ", ".join(
            f"{text_code(new)} as {text_code(old)}" for old, new in behaviour.renamed.items()
        )
        lines += [f"{text_code(production)} was given {pairs}.", ""]
    if behaviour.kind == CLASSIFICATION:
        lines += [
            f"Agreement with {text_code(production)}: **{_percent(behaviour.agreement)}** "
            f"({behaviour.rows - _disagreeing(behaviour)} of {behaviour.rows} rows).",
            "",
        ]
    else:
        values = [shown(v) for v in behaviour.differences.values()]
        lines += table(["", *behaviour.differences], [["candidate minus production", *values]])
    if behaviour.differing:
        lines += [_differing_title(behaviour), ""]
        lines += _differing_table(behaviour, production)
    return lines


def _disagreeing(behaviour: Behaviour) -> int:
    if behaviour.agreement is None:
        return 0
    return round((1 - behaviour.agreement) * behaviour.rows)


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


def _differing_title(behaviour: Behaviour) -> str:
    if behaviour.kind == CLASSIFICATION:
        total = _disagreeing(behaviour)
        more = f" (first {len(behaviour.differing)} of {total})" if total > MAX_SHOWN_ROWS else ""
        return f"Rows where they disagree{more}:"
    return "Rows that differ most:"


def _differing_table(behaviour: Behaviour, production: str) -> list[str]:
    rows = []
    for item in behaviour.differing:
        values = list(item.row.values.items())
        shown_values = ", ".join(f"{k}={_value(v)}" for k, v in values[:MAX_SHOWN_COLUMNS])
        if len(values) > MAX_SHOWN_COLUMNS:
            shown_values += f", … ({len(values) - MAX_SHOWN_COLUMNS} more)"
        row = [f"{md_code(item.row.source)} #{item.row.index}", md_code(cut(shown_values, 200))]
        row += [md_code(_value(item.candidate)), md_code(_value(item.production))]
        if behaviour.kind == REGRESSION:
            row.append(signed(item.difference))
        rows.append(row)
    header = ["row", "values", "candidate", md_code(production)]
    if behaviour.kind == REGRESSION:
        header.append("difference")
    return table(header, rows)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return shown(value)
    return cut(str(value), 60)
