"""`validate` refuses the monitoring settings that cannot work, naming the field and the fix:
a ground-truth bound on the side where a better model fails, the score also listed as a
feature, the score as its own label."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelci.config.mlops import load_config
from modelci.config.types import GroundTruth
from modelci.errors import ConfigError

CONFIG = """\
version: 1
models:
  - name: prices
    flavor: sklearn
    train: {entrypoint: train.py}
    gate: {metrics: [{name: rmse, max: 40}]}
    monitoring:
      data: scores/${ds}.parquet
      reference: reference.parquet
      features: [area, region]
      score: price
      ground_truth: {label: sold_for, metric: rmse, max: 35}
"""


def load(tmp_path: Path, text: str):
    (tmp_path / "train.py").write_text("print('hello')\n")
    (tmp_path / "mlops.yaml").write_text(text)
    return load_config(tmp_path / "mlops.yaml")


def refusal(tmp_path: Path, old: str, new: str) -> str:
    assert old in CONFIG
    with pytest.raises(ConfigError) as error:
        load(tmp_path, CONFIG.replace(old, new))
    return str(error.value)


def test_an_error_metric_with_max_is_accepted(tmp_path: Path) -> None:
    monitoring = load(tmp_path, CONFIG).models[0].monitoring
    assert monitoring is not None
    assert monitoring.ground_truth == GroundTruth("sold_for", "rmse", None, 35.0)


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_a_min_on_an_error_metric_is_refused_with_the_fix(tmp_path: Path, metric: str) -> None:
    message = refusal(tmp_path, "metric: rmse, max: 35", f"metric: {metric}, min: 35")
    assert (
        f"mlops.yaml:12:{54 + len(metric)}: models[0].monitoring.ground_truth.min: {metric} "
        "is an error "
        f"(lower is better): with min: 35 a model whose {metric} is below 35, a better one, "
        "fails. Use max: 35."
    ) in message


def test_a_max_on_accuracy_is_refused_with_the_fix(tmp_path: Path) -> None:
    message = refusal(tmp_path, "metric: rmse, max: 35", "metric: accuracy, max: 0.8")
    assert "models[0].monitoring.ground_truth.max: accuracy is higher-is-better" in message
    assert "Use min: 0.8." in message


def test_accuracy_with_min_and_an_error_with_both_bounds_the_right_way(tmp_path: Path) -> None:
    text = CONFIG.replace("metric: rmse, max: 35", "metric: accuracy, min: 0.8")
    monitoring = load(tmp_path, text).models[0].monitoring
    assert monitoring is not None and monitoring.ground_truth is not None
    assert (monitoring.ground_truth.metric, monitoring.ground_truth.min) == ("accuracy", 0.8)


def test_the_score_listed_as_a_feature_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "features: [area, region]", "features: [area, region, price]")
    assert 'models[0].monitoring.score: "price" is also in monitoring.features' in message
    assert "Remove it from features." in message


def test_the_score_as_its_own_label_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "label: sold_for", "label: price")
    assert 'models[0].monitoring.ground_truth.label: "price" is the score column' in message


def test_a_feature_listed_twice_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "features: [area, region]", "features: [area, region, area]")
    assert 'duplicate feature column "area"' in message
