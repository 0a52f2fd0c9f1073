"""How a column is measured for drift: its kind, taken from the reference (the data the model
was trained on); its buckets; and the population stability index (PSI) of today's data against
the reference. Pure: counts with pyarrow's compute functions, batch by batch.

The kind of a column, from its reference values (missing cells left out; `tables.py` says what
a number is):

- categorical: some value is text;
- discrete: numbers only, at most `MAX_DISCRETE` distinct values (flags, constants, counts,
  codes);
- continuous: numbers with more distinct values than that.

Its buckets:

- categorical: one per category of the reference (its `MAX_CATEGORIES` most frequent when it
  has more; the others share one bucket), and one for the categories it never saw;
- discrete: one per value of the reference, and one for the values it never saw;
- continuous: a value that holds at least 1/`PSI_BINS` of the reference (a point mass: the
  zeros of a mostly-zero column, a cap) is a bucket of its own; the other values are cut into
  `PSI_BINS` minus that many quantile buckets of theirs, each `[edge, next edge)`, the first
  from -inf and the last to +inf. With k such buckets over the m other values, sorted, edge i
  (1 <= i < k) is the value at position floor(i * m / k); an edge met twice is kept once.

PSI = sum over the buckets of (c - r) * ln(c / r), with r and c the shares of the reference's
and today's present values in the bucket, each floored at `PSI_FLOOR`, so that an empty
bucket counts as 0.01 % instead of making the sum infinite.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .tables import Cells, cells

if TYPE_CHECKING:
    import pyarrow as pa

CATEGORICAL = "categorical"
DISCRETE = "discrete"
CONTINUOUS = "continuous"
PSI_BINS = 10
PSI_FLOOR = 1e-4
MAX_DISCRETE = 20  # distinct numbers in the reference, at most, for a discrete column
MAX_CATEGORIES = 20  # categories with a bucket of their own
MAX_DISTINCT_TEXT = 10_000  # categories of the reference, at most: more is an identifier
UNSEEN = "not in the reference"
_LABEL_CHARS = 40


@dataclass(frozen=True)
class Buckets:
    """How a column's values are put into buckets, and how many of the reference's are in each.

    The first buckets are `values`, one each; then, for a continuous column, the intervals
    cut at `edges`; for a categorical one, "other categories" (those in `others`) when it has
    any; for discrete and categorical columns, last, the values the reference never saw."""

    kind: str
    values: tuple[float, ...] | tuple[str, ...]
    edges: tuple[float, ...]
    others: tuple[str, ...]
    labels: tuple[str, ...]
    reference: tuple[int, ...]

    def count(self, column: Cells) -> list[int]:
        """Today's values of one batch, per bucket."""
        import pyarrow.compute as pc

        if self.kind == CATEGORICAL:
            assert column.text is not None, "categorical columns are read with their text"
            present = pc.drop_null(column.text)
        else:
            present = pc.drop_null(column.numbers)
        return _per_bucket(self.bucket_of(present), len(self.labels))

    def bucket_of(self, present: pa.Array) -> pa.Array:
        """The bucket of each value (numbers, or text for a categorical column)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        own = pc.cast(
            pc.index_in(present, value_set=pa.array(self.values, _value_type(self.kind))),
            pa.int64(),
        )
        rest = pa.scalar(len(self.values), pa.int64())
        if self.kind == CONTINUOUS and self.edges:
            above = [pc.cast(pc.greater_equal(present, edge), pa.int8()) for edge in self.edges]
            interval = above[0]
            for each in above[1:]:  # at most PSI_BINS - 1 edges: an int8 holds the count
                interval = pc.add(interval, each)
            return pc.coalesce(own, pc.add(pc.cast(interval, pa.int64()), rest))
        if self.kind == CATEGORICAL and self.others:
            seen = pc.is_in(present, value_set=pa.array(self.others, pa.string()))
            after = pa.scalar(len(self.values) + 1, pa.int64())
            return pc.coalesce(own, pc.if_else(seen, rest, after))
        return pc.coalesce(own, rest)

    @property
    def description(self) -> str:
        """e.g. "continuous, 10 buckets", for messages."""
        return f"{self.kind}, {len(self.labels)} buckets"


@dataclass(frozen=True)
class Unmeasurable:
    """A column that cannot be measured, and why (a sentence with its fix)."""

    reason: str


Profile = Buckets | Unmeasurable


@dataclass(frozen=True)
class Distribution:
    """What a check saw of one column, for the picture: the reference's and today's share of
    each bucket, and its PSI (None when it could not be measured; `note` says why)."""

    column: str
    kind: str
    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    psi: float | None
    note: str = ""


def psi(reference: Sequence[int], current: Sequence[int]) -> float:
    """PSI of today's counts per bucket against the reference's (the module's formula)."""
    expected, actual = floored_shares(reference), floored_shares(current)
    return sum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True))


def shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def floored_shares(counts: Sequence[int]) -> list[float]:
    return [max(share, PSI_FLOOR) for share in shares(counts)]


# --- the reference: its kind, then its buckets ---------------------------------------------


@dataclass
class Survey:
    """What the first reading of the reference tells of one column: enough for its kind, and
    the counts of a discrete column."""

    rows: int = 0
    missing: int = 0
    numbers: int = 0
    text_example: str | None = None
    values: dict[float, int] | None = field(default_factory=dict)  # None past MAX_DISCRETE

    def add(self, array: pa.Array) -> None:
        column = cells(array, numbers=self.text_example is None)  # categorical once text is seen
        self.rows += column.rows
        self.missing += column.count_missing()
        self.numbers += column.count_numbers()
        if self.text_example is None and column.count_text():
            self.text_example = first_text(array, column)
        if self.values is not None and self.text_example is None:
            self.values = _add_values(self.values, column.numbers)

    @property
    def kind(self) -> str | None:
        """The column's kind; None when the reference has no value in it."""
        if self.text_example is not None:
            return CATEGORICAL
        if self.numbers == 0:
            return None
        return CONTINUOUS if self.values is None else DISCRETE


def discrete_buckets(counts: Mapping[float, int]) -> Buckets:
    values = tuple(sorted(counts))
    return Buckets(
        kind=DISCRETE,
        values=values,
        edges=(),
        others=(),
        labels=(*(_number(value) for value in values), UNSEEN),
        reference=(*(counts[value] for value in values), 0),
    )


def categorical_buckets(counts: Mapping[str, int]) -> Buckets:
    ranked = sorted(counts, key=lambda category: (-counts[category], category))
    own, others = tuple(ranked[:MAX_CATEGORIES]), tuple(ranked[MAX_CATEGORIES:])
    labels = [_text(category) for category in own]
    reference = [counts[category] for category in own]
    if others:
        labels.append(f"{len(others):,} other categories")
        reference.append(sum(counts[category] for category in others))
    return Buckets(
        kind=CATEGORICAL,
        values=own,
        edges=(),
        others=others,
        labels=(*labels, UNSEEN),
        reference=(*reference, 0),
    )


def continuous_buckets(numbers: pa.Array) -> Buckets:
    """Quantile buckets of the reference's numbers (no nulls), point masses apart. Values at
    sorted positions come from pyarrow's exact quantiles: no sort of the whole column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    masses = _point_masses(numbers)
    rest = numbers
    if masses:
        rest = pc.filter(numbers, pc.invert(pc.is_in(numbers, value_set=pa.array(masses))))
    parts = max(1, PSI_BINS - len(masses))
    positions = [i * len(rest) // parts for i in range(1, parts)] if len(rest) else []
    edges = tuple(sorted(set(_values_at(rest, positions))))
    labels = (*(f"= {_number(v)}" for v in masses), *_interval_labels(edges))
    shape = Buckets(CONTINUOUS, tuple(masses), edges, (), labels, ())
    reference = _per_bucket(shape.bucket_of(numbers), len(labels))
    return Buckets(CONTINUOUS, tuple(masses), edges, (), labels, tuple(reference))


def _point_masses(numbers: pa.Array) -> list[float]:
    """The values that hold at least 1/PSI_BINS of `numbers`. Such a run of equal values in
    the sorted column is at least `step` long, so it covers a position that is a multiple of
    `step`: only the values there need counting."""
    import pyarrow.compute as pc

    step = max(1, len(numbers) // PSI_BINS)
    candidates = sorted(set(_values_at(numbers, list(range(0, len(numbers), step)))))
    return [
        value
        for value in candidates
        if int(pc.sum(pc.equal(numbers, value)).as_py()) * PSI_BINS >= len(numbers)
    ]


def _values_at(values: pa.Array, positions: Sequence[int]) -> list[float]:
    """The values at `positions` of `values` sorted. pyarrow's "lower" quantile q is the value
    at position floor(q * (n - 1)): q = (p + 0.5) / (n - 1) lands on p, rounding aside."""
    import pyarrow.compute as pc

    last = len(values) - 1
    if not positions:
        return []
    if last == 0:
        return [values[0].as_py()] * len(positions)
    fractions = [min(1.0, (position + 0.5) / last) for position in positions]
    return pc.quantile(values, q=fractions, interpolation="lower").to_pylist()


def _add_values(values: dict[float, int], numbers: pa.Array) -> dict[float, int] | None:
    """`values` with the batch's numbers counted; None once there are more than MAX_DISCRETE."""
    import pyarrow.compute as pc

    distinct = pc.unique(pc.drop_null(numbers))
    if len(distinct) > MAX_DISCRETE or len(set(values) | set(distinct.to_pylist())) > MAX_DISCRETE:
        return None
    for pair in pc.value_counts(pc.drop_null(numbers)).to_pylist():
        values[pair["values"]] = values.get(pair["values"], 0) + pair["counts"]
    return values


def first_text(array: pa.Array, column: Cells) -> str:
    """The first cell of a batch that holds text, as written (for messages)."""
    import pyarrow.compute as pc

    text = cells(array, text=True).text
    assert text is not None
    return str(pc.filter(text, column.text_mask())[0].as_py())


# --- helpers -------------------------------------------------------------------------------


def _per_bucket(buckets: pa.Array, size: int) -> list[int]:
    import pyarrow.compute as pc

    counts = [0] * size
    for pair in pc.value_counts(buckets).to_pylist():
        counts[pair["values"]] += pair["counts"]
    return counts


def _value_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return pa.string() if kind == CATEGORICAL else pa.float64()


def _interval_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["other values"]
    inner = [f"[{_number(low)}, {_number(high)})" for low, high in itertools.pairwise(edges)]
    return [f"< {_number(edges[0])}", *inner, f">= {_number(edges[-1])}"]


def _number(value: float) -> str:
    return f"{value:.4g}"


def _text(category: str) -> str:
    return category if len(category) <= _LABEL_CHARS else category[: _LABEL_CHARS - 3] + "..."
