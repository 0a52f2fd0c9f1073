"""What serving the model costs, candidate and production side by side: the model's size, its
load time, p50/p95 latency of a single request and of a batch, and peak memory, measured in the
same run on the same machine (`lifecycle/measure.py` measures; this module only shows).

Pure: figures in, markdown out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .markdown import md_code, shown, size, table


@dataclass(frozen=True)
class ServingCost:
    model_bytes: int
    load_seconds: float  # from starting `modelci serve` (environment already unpacked) to ready
    single_ms: Sequence[float]  # latency of each single-row request
    batch_ms: Sequence[float]  # latency of each batch request
    batch_rows: int
    peak_memory_bytes: int | None  # the server's processes' peak resident memory, summed


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def ratio(candidate: float | None, production: float | None) -> str:
    if candidate is None or production is None or production <= 0:
        return ""
    return f"{shown(candidate / production)}x"


def render_cost(candidate: ServingCost, production: ServingCost, stand: str) -> list[str]:
    def ms(value: float | None) -> str:
        return "—" if value is None else f"{shown(value)} ms"

    def latency_rows(name: str, ours: Sequence[float], theirs: Sequence[float]) -> list:
        rows = []
        for q, label in ((0.5, "p50"), (0.95, "p95")):
            a, b = percentile(ours, q), percentile(theirs, q)
            rows.append([f"{name} {label}", ms(b), ms(a), ratio(a, b)])
        return rows

    memory_ours, memory_theirs = candidate.peak_memory_bytes, production.peak_memory_bytes
    rows = [
        [
            "model size",
            size(production.model_bytes),
            size(candidate.model_bytes),
            ratio(candidate.model_bytes, production.model_bytes),
        ],
        [
            "load time",
            f"{shown(production.load_seconds)} s",
            f"{shown(candidate.load_seconds)} s",
            ratio(candidate.load_seconds, production.load_seconds),
        ],
        *latency_rows("1 row", candidate.single_ms, production.single_ms),
        *latency_rows(f"{candidate.batch_rows} rows", candidate.batch_ms, production.batch_ms),
        [
            "peak memory",
            size(memory_theirs) if memory_theirs is not None else "—",
            size(memory_ours) if memory_ours is not None else "—",
            ratio(memory_ours, memory_theirs),
        ],
    ]
    samples = (
        f"{len(candidate.single_ms)} single and {len(candidate.batch_ms)} batch requests each, "
        "both servers up at once, requests alternating between them"
    )
    return [
        *table(["", md_code(stand), "candidate", ""], rows),
        f"Served with `modelci serve` (MLServer in each model's own environment archive); "
        f"{samples}.",
        "",
    ]
