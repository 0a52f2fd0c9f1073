"""`models[].review.sample`: an evaluation sample of the repository both models predict on."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelci.config.mlops import load_config
from modelci.config.types import Review
from modelci.errors import ConfigError

CONFIG = """\
version: 1
models:
  - name: churn
    flavor: sklearn
    train: {entrypoint: train.py}
    gate:
      metrics: [{name: accuracy, min: 0.7}]
"""


def repo(tmp_path: Path, review: str) -> Path:
    (tmp_path / "train.py").write_text("print('train')\n", encoding="utf-8")
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "sample.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    path = tmp_path / "mlops.yaml"
    path.write_text(CONFIG + review, encoding="utf-8")
    return path


def test_sample_is_a_file_of_the_repository(tmp_path: Path) -> None:
    config = load_config(repo(tmp_path, "    review: {sample: data/sample.csv}\n"))
    assert config.models[0].review == Review(sample="data/sample.csv")
    assert load_config(repo(tmp_path, "")).models[0].review == Review()


@pytest.mark.parametrize(
    ("sample", "says"),
    [
        ("data/missing.csv", "models[0].review.sample"),
        ("../outside.csv", "models[0].review.sample"),
        ("/etc/passwd", "absolute path"),
    ],
)
def test_a_sample_outside_the_repository_or_missing_is_refused(tmp_path, sample, says) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(repo(tmp_path, f"    review: {{sample: {sample}}}\n"))
    assert says in str(refused.value) and "mlops.yaml" in str(refused.value)


def test_an_unknown_review_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="review"):
        load_config(repo(tmp_path, "    review: {samples: data/sample.csv}\n"))
