"""mlops.yaml's `code:` section: what the code archive leaves out, each pattern checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelci.config.mlops import load_config
from modelci.config.types import Code
from modelci.errors import ConfigError

MINIMAL = """\
version: 1
models:
  - name: churn
    flavor: sklearn
    train: {entrypoint: train.py}
    gate:
      metrics: [{name: accuracy, min: 0.7}]
"""


def config_path(tmp_path: Path, code: str) -> Path:
    (tmp_path / "train.py").write_text("print('trained')\n")
    path = tmp_path / "mlops.yaml"
    path.write_text(MINIMAL + code)
    return path


def problems(tmp_path: Path, code: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(config_path(tmp_path, code))
    return [f"{p.field}: {p.message} (line {p.line})" for p in caught.value.problems]


def test_without_a_code_section_nothing_is_left_out(tmp_path: Path) -> None:
    assert load_config(config_path(tmp_path, "")).code == Code(exclude=())


def test_paths_and_globs_are_read_as_written(tmp_path: Path) -> None:
    code = 'code:\n  exclude: [data, "data/raw/", "**/*.parquet", "notebooks/*.ipynb"]\n'

    config = load_config(config_path(tmp_path, code))

    assert config.code.exclude == ("data", "data/raw/", "**/*.parquet", "notebooks/*.ipynb")


@pytest.mark.parametrize(
    ("pattern", "fix"),
    [
        ('"/data"', "without a leading / or :"),
        ('":(top)data"', "without a leading / or :"),
        ('"!data/keep.csv"', "no negation"),
        ('"../secrets"', "without an empty, . or .. part"),
        ('"data//raw"', "without an empty, . or .. part"),
        ('"."', "without an empty, . or .. part"),
        ('"data\\\\raw"', "without a backslash or a control character"),
        ('""', 'a non-empty string, e.g. "data/**"'),
        ("7", 'a non-empty string, e.g. "data/**"'),
    ],
)
def test_a_pattern_that_is_no_relative_glob_is_refused_with_its_fix(
    tmp_path: Path, pattern: str, fix: str
) -> None:
    (problem,) = problems(tmp_path, f"code:\n  exclude: [train.py, {pattern}]\n")

    assert problem.startswith("code.exclude[1]: found ")
    assert fix in problem
    assert problem.endswith("(line 9)")


def test_a_misspelt_key_or_a_wrong_shape_is_named(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "code:\n  excludes: [data]\n")
    assert problem.startswith('code.excludes: unknown key "excludes". Did you mean "exclude"?')
    assert problem.endswith("(line 9)")
    (problem,) = problems(tmp_path, "code:\n  exclude: data\n")
    assert problem.startswith("code.exclude: found ") and "a list of paths or globs" in problem
