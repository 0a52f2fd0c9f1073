"""Every kind of column measured right. Generated data for each type (continuous, binary,
constant, skewed discrete, low-cardinality numeric, categorical with unseen categories, a
mostly-zero continuous column, mixed text and numbers), each calm and shifted, written as CSV
and as Parquet and checked by `evaluate`:

- the PSI equals `independent_psi`, written here from the README's rule in plain Python;
- a calm day passes and decides no retraining; every shifted day fails PSI and triggers;
- CSV and Parquet give the same figures.
"""

from __future__ import annotations

import bisect
import csv
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelci.config.types import Monitoring, Retrain
from modelci.monitoring.checks import NONE, TRIGGER, decide_retraining, evaluate
from modelci.monitoring.drift import _values_at
from modelci.monitoring.tables import open_table

ROWS = 20_000
MAX_PSI = 0.2
Value = float | str | None


def independent_psi(reference: Sequence[Value], current: Sequence[Value]) -> float:
    """PSI by the README's rule, without the product's code.

    Missing cells (None) are left out. The kind comes from the reference: categorical if a
    value is text, discrete if it has at most 20 distinct numbers, continuous otherwise. A
    discrete or categorical column has a bucket per reference value (the 20 most frequent
    categories, the others together) and one for values the reference never saw. A
    continuous column has a bucket per value holding at least a tenth of the reference, and
    the others cut into k = 10 - (such values) buckets at edges e_i = v[floor(i * m / k)] of
    the m other values v, sorted, each bucket [e_i, e_i+1).
    PSI = sum over buckets of (c - r) * ln(c / r), r and c the reference's and today's shares
    of the present values, each at least 1e-4."""
    before = [v for v in reference if v is not None]
    now = [v for v in current if v is not None]
    bucket = _bucket_rule(before)
    r, c = Counter(map(bucket, before)), Counter(map(bucket, now))
    total = 0.0
    for key in set(r) | set(c):
        expected = max(r[key] / len(before), 1e-4)
        actual = max(c[key] / len(now), 1e-4)
        total += (actual - expected) * math.log(actual / expected)
    return total


def _bucket_rule(reference: list[Value]) -> Callable[[Value], object]:
    counts = Counter(reference)
    if any(isinstance(v, str) for v in reference):
        top = sorted(counts, key=lambda v: (-counts[v], str(v)))[:20]
        return lambda v: v if v in top else ("other" if v in counts else "unseen")
    if len(counts) <= 20:
        return lambda v: v if v in counts else "unseen"
    masses = {v for v, n in counts.items() if n * 10 >= len(reference)}
    rest = sorted(v for v in reference if v not in masses)
    k, m = 10 - len(masses), len(rest)
    edges = sorted({rest[i * m // k] for i in range(1, k)})
    return lambda v: ("mass", v) if v in masses else bisect.bisect_right(edges, v)


# --- generated columns: (reference and calm day, shifted day), each a value generator ---------


def weighted(values: Sequence[Value], weights: Sequence[float]) -> Callable[[random.Random], Value]:
    return lambda rng: rng.choices(values, weights)[0]


def mostly_zero(tail_share: float, scale: float) -> Callable[[random.Random], Value]:
    return lambda rng: (
        round(rng.lognormvariate(0, 1) * scale, 3) if rng.random() < tail_share else 0.0
    )


COLUMNS: dict[str, tuple[Callable[[random.Random], Value], Callable[[random.Random], Value]]] = {
    "continuous": (lambda rng: rng.gauss(50, 10), lambda rng: rng.gauss(56, 10)),
    "binary": (weighted([0, 1], [95, 5]), weighted([0, 1], [40, 60])),
    "constant": (lambda rng: 100, lambda rng: 250),
    "skewed discrete": (
        weighted(range(7), [70, 15, 7, 4, 2, 1, 1]),
        weighted(range(7), [40, 20, 15, 10, 8, 4, 3]),
    ),
    "low-cardinality numeric": (
        weighted([1, 2, 3, 4, 5], [10, 20, 40, 20, 10]),
        weighted([1, 2, 3, 4, 5], [5, 10, 20, 30, 35]),
    ),
    "categorical with unseen": (
        weighted(["north", "south", "east", "west"], [40, 30, 20, 10]),
        weighted(["north", "south", "east", "west", "mars"], [20, 20, 20, 10, 30]),
    ),
    "mostly zero": (mostly_zero(0.05, 100), mostly_zero(0.30, 100)),
    "mostly zero, tail moves": (mostly_zero(0.4, 100), mostly_zero(0.4, 300)),
    "mixed text and numbers": (
        weighted(["S", "M", "L", "42", None], [30, 40, 20, 5, 5]),
        weighted(["S", "M", "L", "42", "XL", None], [10, 20, 20, 20, 25, 5]),
    ),
}


def sample(make: Callable[[random.Random], Value], seed: int) -> list[Value]:
    rng = random.Random(seed)
    return [make(rng) for _ in range(ROWS)]


def write_csv(path: Path, columns: dict[str, list[Value]]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in zip(*columns.values(), strict=True):
            writer.writerow(
                ["" if v is None else repr(v) if isinstance(v, float) else v for v in row]
            )
    return path


def write_parquet(path: Path, columns: dict[str, list[Value]]) -> Path:
    """Numbers as float64, text as strings: what a scoring job's DataFrame writes."""
    arrays = {}
    for name, values in columns.items():
        text = any(isinstance(v, str) for v in values)
        arrays[name] = pa.array(
            [None if v is None else str(v) if text else float(v) for v in values],
            pa.string() if text else pa.float64(),
        )
    pq.write_table(pa.table(arrays), path)
    return path


def spec(features: Sequence[str]) -> Monitoring:
    return Monitoring(
        data="d.csv",
        reference="r.csv",
        features=tuple(features),
        max_psi=MAX_PSI,
        max_null_share=0.1,
    )


def check(tmp_path: Path, name: str, reference: list[Value], today: list[Value], fmt: str):
    writer = write_csv if fmt == "csv" else write_parquet
    column = name.replace(" ", "_").replace(",", "")
    ref = writer(tmp_path / f"reference.{fmt}", {column: reference})
    cur = writer(tmp_path / f"today.{fmt}", {column: today})
    result = evaluate(spec([column]), open_table(ref, "ref"), open_table(cur, "today"))
    return result, result.metrics[f"psi.{column}"]


def decision(result) -> str:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    return decide_retraining(result, Retrain(), production_stand=True, last=None, now=now).action


@pytest.mark.parametrize("name", list(COLUMNS))
def test_a_calm_day_passes_and_its_psi_is_the_independent_one(tmp_path: Path, name: str) -> None:
    calm, _ = COLUMNS[name]
    reference, today = sample(calm, seed=1), sample(calm, seed=2)
    result, value = check(tmp_path, name, reference, today, "csv")
    assert value == pytest.approx(independent_psi(reference, today), rel=1e-9, abs=1e-12)
    assert value < MAX_PSI / 4, result.checks
    assert result.passed, result.failures
    assert decision(result) == NONE


@pytest.mark.parametrize("name", list(COLUMNS))
def test_every_real_shift_is_seen_and_triggers(tmp_path: Path, name: str) -> None:
    calm, shifted = COLUMNS[name]
    reference, today = sample(calm, seed=1), sample(shifted, seed=3)
    result, value = check(tmp_path, name, reference, today, "csv")
    assert value == pytest.approx(independent_psi(reference, today), rel=1e-9, abs=1e-12)
    assert value > MAX_PSI, result.checks
    (failed,) = result.failures
    assert failed.name.startswith("PSI of ") and failed.kind == "drift"
    assert decision(result) == TRIGGER


@pytest.mark.parametrize("name", list(COLUMNS))
def test_csv_and_parquet_give_the_same_figures(tmp_path: Path, name: str) -> None:
    calm, shifted = COLUMNS[name]
    reference, today = sample(calm, seed=1), sample(shifted, seed=3)
    results = {}
    for fmt in ("csv", "parquet"):
        (tmp_path / fmt).mkdir()
        results[fmt], _ = check(tmp_path / fmt, name, reference, today, fmt)
    assert results["csv"].metrics == pytest.approx(results["parquet"].metrics, rel=1e-12)
    assert [c.message for c in results["csv"].checks] == [
        c.message for c in results["parquet"].checks
    ]


def test_the_blind_spots_of_decile_bins_are_gone(tmp_path: Path) -> None:
    """The issue's cases: a flag from 5 % to 60 % ones, and a constant from 100 to 250, gave
    PSI 0.0000 over the reference's deciles. By shares per value they are large."""
    flag = [1.0] * 50 + [0.0] * 950
    raised = [1.0] * 600 + [0.0] * 400
    _, value = check(tmp_path, "flag", flag, raised, "csv")
    by_hand = (0.6 - 0.05) * math.log(0.6 / 0.05) + (0.4 - 0.95) * math.log(0.4 / 0.95)
    assert value == pytest.approx(by_hand)
    constant, moved = [100.0] * 1000, [250.0] * 1000
    (tmp_path / "c").mkdir()
    _, value = check(tmp_path / "c", "constant", constant, moved, "csv")
    assert value == pytest.approx(2 * (1 - 1e-4) * math.log(1 / 1e-4))


def test_kinds_and_buckets_are_named_in_the_message(tmp_path: Path) -> None:
    columns, today = {}, {}
    for name, (calm, _) in COLUMNS.items():
        column = name.replace(" ", "_").replace(",", "")
        columns[column], today[column] = sample(calm, 1), sample(calm, 2)
    ref = write_csv(tmp_path / "r.csv", columns)
    cur = write_csv(tmp_path / "t.csv", today)
    result = evaluate(spec(list(columns)), open_table(ref, "r"), open_table(cur, "t"))
    kinds = {d.column: (d.kind, len(d.labels)) for d in result.distributions}
    assert kinds == {
        "continuous": ("continuous", 10),
        "binary": ("discrete", 3),
        "constant": ("discrete", 2),
        "skewed_discrete": ("discrete", 8),
        "low-cardinality_numeric": ("discrete", 6),
        "categorical_with_unseen": ("categorical", 5),
        "mostly_zero": ("continuous", 10),  # the zeros, and 9 quantile buckets of the rest
        "mostly_zero_tail_moves": ("continuous", 10),
        "mixed_text_and_numbers": ("categorical", 5),
    }
    message = next(c.message for c in result.checks if c.name == "PSI of binary")
    assert "(max 0.2; discrete, 3 buckets): stable" in message


def test_categories_past_the_twenty_most_frequent_share_a_bucket(tmp_path: Path) -> None:
    rng = random.Random(5)
    names = [f"shop {i:02d}" for i in range(50)]
    reference = [rng.choices(names, [50 - i for i in range(50)])[0] for _ in range(ROWS)]
    today = [rng.choices(names, [1 + i for i in range(50)])[0] for _ in range(ROWS)]
    result, value = check(tmp_path, "shop", reference, today, "csv")
    (shown,) = result.distributions
    assert shown.labels[20:] == ("30 other categories", "not in the reference")
    assert value == pytest.approx(independent_psi(reference, today), rel=1e-9)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=1, max_size=300), st.data())
def test_values_at_sorted_positions_without_sorting(values: list[int], data) -> None:
    """The edges come from pyarrow's exact quantiles at fractions that land on positions;
    they must be the values at those positions of the sorted column, at any length."""
    positions = data.draw(st.lists(st.integers(0, len(values) - 1), min_size=1, max_size=12))
    found = _values_at(pa.array([float(v) for v in values]), sorted(positions))
    assert found == [float(sorted(values)[p]) for p in sorted(positions)]


def test_values_at_sorted_positions_of_a_long_column() -> None:
    import numpy as np

    values = np.random.default_rng(7).normal(0, 1, 2_000_003).round(4)
    positions = [i * len(values) // 10 for i in range(10)] + [len(values) - 1]
    assert _values_at(pa.array(values), positions) == np.sort(values)[positions].tolist()
