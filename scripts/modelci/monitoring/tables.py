"""The tables monitoring reads: CSV or Parquet files on local disk, read with pyarrow in
batches of rows, only the columns asked for, never a Python object per row or per cell.

A file is Parquet when it starts with Parquet's magic bytes (`PAR1`), CSV otherwise (UTF-8
with a header line; a byte-order mark is skipped). Each cell is one of three things, the same
way in both formats:

- missing: an empty cell, `NA`, `NaN`, `null` or `None` (any case, spaces around ignored); in
  Parquet a null or a NaN;
- a number: a finite decimal number (`12`, `-0.5`, `1e3`, `.5`) or `true`/`false` (1 and 0),
  spaces around ignored; in Parquet a finite value of a number or boolean type;
- text: anything else (`north`, `12 kg`, `inf`; in Parquet an infinite number).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

PARQUET_MAGIC = b"PAR1"
CSV_BLOCK_BYTES = 8 << 20  # a batch of a CSV file is about this much text
PARQUET_BATCH_ROWS = 256 * 1024
MISSING_TEXT = ("", "na", "nan", "null", "none")
BOOLEAN_TEXT = {"true": 1.0, "false": 0.0}
# What counts as a number in text; pyarrow's cast to float64 parses exactly these (and more:
# `inf`, `nan`, which are text or missing here). tests/unit/test_tables.py holds both to it.
NUMBER_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_MESSAGE_CHARS = 300  # of pyarrow's own error text: it may quote a whole line of the file


def _spellings(words: Sequence[str]) -> list[str]:
    """Every way to write `words` in upper and lower case letters: a lookup in these costs
    half of lowering every cell first."""
    return [
        "".join(letters)
        for word in words
        for letters in itertools.product(*({c.lower(), c.upper()} for c in word))
    ]


_MISSING_SPELLINGS = _spellings(MISSING_TEXT)


class DataProblem(ValueError):
    """The monitoring data cannot be checked at all (missing, empty, without a column)."""


@dataclass(frozen=True)
class TableFile:
    """A table on local disk: where it is, what messages call it, its columns."""

    path: Path
    source: str  # e.g. "s3://bucket/scores/2026-12-01.csv", for messages
    parquet: bool
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Cells:
    """One column of one batch of rows, each cell sorted into missing, number or text."""

    missing: pa.Array  # bool: the cell holds no value
    numbers: pa.Array  # float64: the cell's number; null when it is missing or text
    text: pa.Array | None  # string: the cell as written (trimmed), null when missing; None
    # when not asked for

    @property
    def rows(self) -> int:
        return len(self.missing)

    def count_missing(self) -> int:
        return _true_count(self.missing)

    def count_numbers(self) -> int:
        return len(self.numbers) - self.numbers.null_count

    def count_text(self) -> int:
        """Cells that hold a value that is not a number."""
        return self.rows - self.count_missing() - self.count_numbers()

    def text_mask(self) -> pa.Array:
        import pyarrow.compute as pc

        return pc.and_(pc.invert(self.missing), pc.is_null(self.numbers))


def open_table(path: Path, source: str) -> TableFile:
    """The table in `path` (CSV or Parquet); DataProblem when it is neither, or has no header."""
    with path.open("rb") as head:
        parquet = head.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    columns = _parquet_columns(path, source) if parquet else _csv_columns(path, source)
    return TableFile(path=path, source=source, parquet=parquet, columns=columns)


def require_columns(table: TableFile, names: Sequence[str]) -> None:
    """DataProblem naming the first of `names` the table lacks, and the columns it has."""
    for name in names:
        if name not in table.columns:
            found = ", ".join(table.columns) or "none"
            raise DataProblem(f"{table.source} has no column {name!r} (its columns: {found})")


def batches(table: TableFile, names: Sequence[str]) -> Iterator[dict[str, pa.Array]]:
    """The columns `names` of the table, batch after batch of rows, as read (text for CSV)."""
    import pyarrow as pa

    wanted = list(dict.fromkeys(names))
    reader = _parquet_batches(table, wanted) if table.parquet else _csv_batches(table, wanted)
    try:
        for batch in reader:
            yield {name: batch.column(name) for name in wanted}
    except (pa.ArrowInvalid, OSError) as error:
        raise _problem(table.source, "could not be read", error) from None


def cells(array: pa.Array, *, text: bool = False, numbers: bool = True) -> Cells:
    """Sort each cell of a column into missing, number or text (the module's rules). With
    `numbers` False, a text column's cells are read as missing or text only (a column known
    to be categorical: parsing numbers out of it would be wasted)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array.type, pa.DictionaryType):
        array = array.dictionary_decode()
    kind = array.type
    if pa.types.is_null(kind):
        return Cells(
            missing=pc.fill_null(pa.nulls(len(array), pa.bool_()), True),
            numbers=pa.nulls(len(array), pa.float64()),
            text=pa.nulls(len(array), pa.string()) if text else None,
        )
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        numbers = pc.cast(array, pa.float64())
        missing = pc.is_null(numbers)
        return Cells(missing, numbers, _as_text(array) if text else None)
    if pa.types.is_floating(kind):
        numbers = pc.cast(array, pa.float64())
        missing = pc.fill_null(pc.is_nan(numbers), True)
        finite = pc.if_else(pc.is_finite(numbers), numbers, None)
        return Cells(missing, finite, _as_text(array) if text else None)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        strings = pc.cast(array, pa.string())
        return _text_cells(strings, text) if numbers else _words(strings, text)
    raise DataProblem(
        f"a column of type {kind} cannot be monitored; monitoring reads numbers, booleans and text"
    )


# --- CSV ------------------------------------------------------------------------------------


def _csv_columns(path: Path, source: str) -> tuple[str, ...]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=1 << 20),
            convert_options=pcsv.ConvertOptions(column_types={}, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as error:
        if "Empty CSV file" in str(error):
            raise DataProblem(f"{source} has no rows (an empty file)") from None
        raise _problem(source, "could not be read as CSV (nor is it Parquet)", error) from None
    with reader:
        return tuple(reader.schema.names)


def _csv_batches(table: TableFile, names: list[str]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(
        table.path,
        read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=True),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            include_columns=names,
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    with reader:
        yield from reader


def _text_cells(strings: pa.Array, text: bool) -> Cells:
    """Cells of a text column: the fast way when every value is a plain number or missing."""
    import pyarrow.compute as pc

    missing = _missing(strings)
    head = min(len(strings), 64)  # a failed cast costs as much as a whole one: try a few first
    if _plain_numbers(strings.slice(0, head), missing.slice(0, head)) is None:
        return _text_cells_slowly(strings, text)
    numbers = _plain_numbers(strings, missing)
    if numbers is None:
        return _text_cells_slowly(strings, text)
    return Cells(missing, numbers, pc.if_else(missing, None, strings) if text else None)


def _plain_numbers(strings: pa.Array, missing: pa.Array) -> pa.Array | None:
    """pyarrow's cast of the cells to numbers; None when a cell is neither missing nor a
    plain finite number (spaces around it, text, true/false, `inf`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        numbers = pc.cast(pc.if_else(missing, None, strings), pa.float64())
    except pa.ArrowInvalid:
        return None
    return None if pc.all(pc.is_finite(numbers)).as_py() is False else numbers


def _words(strings: pa.Array, text: bool) -> Cells:
    """Cells of a categorical column: missing or text, never a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(strings)
    missing = _missing(trimmed)
    numbers = pa.nulls(len(strings), pa.float64())
    return Cells(missing, numbers, pc.if_else(missing, None, trimmed) if text else None)


def _text_cells_slowly(strings: pa.Array, text: bool) -> Cells:
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(strings)
    missing = _missing(trimmed)
    plain = pc.and_(pc.invert(missing), pc.match_substring_regex(trimmed, NUMBER_PATTERN))
    numbers = pc.cast(pc.if_else(plain, trimmed, None), pa.float64())
    numbers = pc.if_else(pc.is_finite(numbers), numbers, None)
    for word, value in BOOLEAN_TEXT.items():
        spelled = pc.is_in(trimmed, value_set=pa.array(_spellings([word])))
        numbers = pc.if_else(spelled, value, numbers)
    return Cells(missing, numbers, pc.if_else(missing, None, trimmed) if text else None)


def _missing(strings: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    spelled = pc.is_in(strings, value_set=pa.array(_MISSING_SPELLINGS, pa.string()))
    return pc.or_(pc.is_null(strings), spelled)


# --- Parquet --------------------------------------------------------------------------------


def _parquet_columns(path: Path, source: str) -> tuple[str, ...]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            return tuple(parquet.schema_arrow.names)
    except (pa.ArrowInvalid, OSError) as error:
        raise _problem(source, "is not a readable Parquet file", error) from None


def _parquet_batches(table: TableFile, names: list[str]) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(table.path) as parquet:
        yield from parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=names)


# --- helpers --------------------------------------------------------------------------------


def _as_text(array: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(array, pa.string())


def _true_count(mask: pa.Array) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(mask).as_py() or 0)


def _problem(source: str, what: str, error: BaseException) -> DataProblem:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if len(reason) > _MESSAGE_CHARS:
        reason = reason[:_MESSAGE_CHARS] + "..."
    return DataProblem(f"{source} {what}: {reason}")
