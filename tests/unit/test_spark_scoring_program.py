"""The Spark scoring program (jobs/spark_score.py) runs in the model's environment, where modelci
is not installed: it imports nothing of modelci, and nothing beyond the standard library until
it runs; it writes the day to the file the config's checks and the monitoring expect; and it
refuses arguments it could not score with before Spark starts."""

from __future__ import annotations

import ast
import sys

import pytest

from modelci.config.types import SPARK_DAY_FILE
from modelci.jobs import spark_score
from modelci.render.spark import SCORING_PROGRAM

# What the program may import when it runs, in the model's environment.
RUNTIME_PACKAGES = {"pyspark", "mlflow"}


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import: the program is staged as one file"
            names.add((node.module or "").split(".")[0])
    return names


def test_the_program_is_self_contained() -> None:
    tree = ast.parse(SCORING_PROGRAM.read_text())
    top = ast.Module(body=[n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)])

    assert imported(top) <= set(sys.stdlib_module_names) | {"__future__"}
    assert imported(tree) - set(sys.stdlib_module_names) - {"__future__"} == RUNTIME_PACKAGES


def test_the_day_file_is_the_one_the_config_and_monitoring_name() -> None:
    assert spark_score.DAY_FILE == SPARK_DAY_FILE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--date", ""), "--date '' is not a day (YYYY-MM-DD)"),
        (("--date", "2026-13-01"), "--date '2026-13-01' is not a day"),
        (("--partition", "ds; drop"), "--partition 'ds; drop' is not a plain column name"),
        (("--format", "csv"), "invalid choice: 'csv'"),
    ],
)
def test_arguments_it_cannot_score_with_stop_it_before_spark_starts(
    change: tuple[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = {
        "--model-uri": "s3://mlops/models/m-1",
        "--input": "s3a://features/customers",
        "--partition": "ds",
        "--date": "2026-12-01",
        "--output": "s3a://data/scores",
        "--prediction": "score",
    }
    argv[change[0]] = change[1]

    with pytest.raises(SystemExit) as exit_:
        spark_score.parse_args([item for pair in argv.items() for item in pair])

    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
