"""Reading the monitoring's tables with pyarrow: CSV and Parquet files on disk, each cell
missing, a number or text by the same rules in both formats."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelci.monitoring.tables import (
    NUMBER_PATTERN,
    DataProblem,
    _text_cells_slowly,
    batches,
    cells,
    open_table,
    require_columns,
)


def sorted_cells(values: list[str]) -> list[tuple[str, float | None]]:
    """Each cell as ("missing", None), ("number", value) or ("text", None)."""
    column = cells(pa.array(values, pa.string()), text=True)
    out = []
    for missing, number in zip(column.missing.to_pylist(), column.numbers.to_pylist(), strict=True):
        if missing:
            out.append(("missing", None))
        elif number is None:
            out.append(("text", None))
        else:
            out.append(("number", number))
    return out


def test_each_cell_is_missing_a_number_or_text() -> None:
    numbers = ["1.5", "", "NA", " nan ", "Null", "None", "-2e3", ".5", "+7", " 3 ", "TRUE"]
    found = sorted_cells([*numbers, "false", "north", "12 kg", "inf", "1,5", "0x10"])
    assert found == [
        ("number", 1.5),
        *[("missing", None)] * 5,
        ("number", -2000.0),
        ("number", 0.5),
        ("number", 7.0),
        ("number", 3.0),
        ("number", 1.0),
        ("number", 0.0),
        *[("text", None)] * 5,
    ]


# Cells made of characters that numbers, missing markers and booleans are written with.
CELL = st.text(alphabet="0123456789.eE+- naNulNoTrsf\t", max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(CELL, min_size=1, max_size=12))
def test_the_fast_way_and_the_careful_way_sort_cells_alike(values: list[str]) -> None:
    """A batch is read with pyarrow's own cast when it can; otherwise cell by cell with the
    number pattern. Both must give the same cells, so no batch depends on its neighbours."""
    array = pa.array(values, pa.string())
    fast = cells(array, text=True)
    careful = _text_cells_slowly(array, True)
    assert fast.missing.to_pylist() == careful.missing.to_pylist()
    assert fast.numbers.to_pylist() == careful.numbers.to_pylist()


def test_the_number_pattern_takes_what_python_reads_as_a_finite_number() -> None:
    import re

    pattern = re.compile(NUMBER_PATTERN)
    for text in ["0", "-1", "+1.5", "1e-3", "1E+3", ".5", "5.", "007"]:
        assert pattern.match(text) and math.isfinite(float(text)), text
    for text in [
        "",
        ".",
        "e3",
        "1e",
        "--1",
        "1.2.3",
        "inf",
        "nan",
        "1_000",
        "\u0661",
    ]:  # an Arabic-Indic digit
        assert not pattern.match(text), text


def test_a_parquet_column_keeps_its_type(tmp_path: Path) -> None:
    path = tmp_path / "typed.parquet"
    table = pa.table(
        {
            "flag": pa.array([True, False, None]),
            "count": pa.array([1, None, 3], pa.int64()),
            "value": pa.array([1.5, float("nan"), float("inf")]),
            "region": pa.array(["north", "", "12"]),
            "code": pa.array(["a", "b", "a"]).dictionary_encode(),
        }
    )
    pq.write_table(table, path)
    opened = open_table(path, "s3://b/typed.parquet")
    assert opened.parquet and opened.columns == ("flag", "count", "value", "region", "code")
    (batch,) = batches(opened, ["flag", "count", "value", "region", "code"])
    assert cells(batch["flag"]).numbers.to_pylist() == [1.0, 0.0, None]
    assert cells(batch["count"]).missing.to_pylist() == [False, True, False]
    value = cells(batch["value"])  # NaN is missing, infinity is not a number
    assert value.missing.to_pylist() == [False, True, False]
    assert value.numbers.to_pylist() == [1.5, None, None] and value.count_text() == 1
    assert sorted_cells(batch["region"].to_pylist()) == [
        ("text", None),
        ("missing", None),
        ("number", 12.0),
    ]
    assert cells(batch["code"], text=True).text.to_pylist() == ["a", "b", "a"]
    assert cells(pa.array(["a", None, "1"])).missing.to_pylist() == [False, True, False]


def test_csv_is_read_in_batches_of_the_asked_columns_only(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("\ufeffa,b,c\n" + "".join(f"{i},x{i},{i * 2}\n" for i in range(1000)))
    table = open_table(path, "scores.csv")
    assert not table.parquet and table.columns == ("a", "b", "c")
    read = list(batches(table, ["c", "a"]))
    assert all(set(batch) == {"c", "a"} for batch in read)
    assert sum(len(batch["a"]) for batch in read) == 1000
    assert read[0]["c"].type == pa.string()  # as written; cells() tells numbers from text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "has no rows (an empty file)"),
        (b"a,b\n1,2\n3\n", "CSV parse error: Expected 2 columns, got 1"),
        (b"a,b\n\xff\xfe,1\n", "could not be read"),
    ],
)
def test_a_broken_csv_is_a_data_problem_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(DataProblem) as problem:
        table = open_table(path, "s3://b/broken.csv")
        for _ in batches(table, list(table.columns)):
            pass
    assert str(problem.value).startswith("s3://b/broken.csv ")
    assert message in str(problem.value)


def test_a_missing_column_names_the_columns_there_are(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("age,label\n1,0\n")
    with pytest.raises(
        DataProblem, match=r"x\.csv has no column 'score' \(its columns: age, label"
    ):
        require_columns(open_table(path, "x.csv"), ["age", "score"])
