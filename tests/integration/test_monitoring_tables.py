"""`modelci monitor` as the monitoring pod runs it, on Parquet and on CSV: the day's data in
the real S3, the reference an artifact of a run in the real MLflow server. The figures logged
are those of the same check on the same files, whatever their format; the picture of the check
is an artifact of the monitoring run; a data problem fails the check without retraining."""

from __future__ import annotations

import os
import random
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from modelci.config.macros import env_name
from modelci.config.mlops import load_config
from modelci.monitoring.checks import evaluate
from modelci.monitoring.tables import open_table
from tests.harness.tools import VENV_BIN

ROWS = 5000
CONFIG = """\
version: 1
models:
  - name: prices
    flavor: sklearn
    train: {{entrypoint: train.py}}
    gate: {{metrics: [{{name: rmse, max: 40}}]}}
    monitoring:
      data: scores/${{ds}}.{suffix}
      reference: reference.{suffix}
      features: [area, rooms, garden, region]
      score: price
      max_null_share: 0.05
      ranges: {{area: [10, 1000]}}
      ground_truth: {{label: sold_for, metric: rmse, max: 35}}
"""


def houses(seed: int, *, broken: bool = False) -> pa.Table:
    """A day of scored houses: continuous, discrete, binary and categorical columns; broken:
    a tenth of the areas missing (a data problem, not drift)."""
    rng = random.Random(seed)
    area = [max(20.0, rng.gauss(120, 30)) for _ in range(ROWS)]
    price = [a * 2.5 + rng.gauss(0, 10) for a in area]
    columns = {
        "area": [None if broken and i % 10 == 0 else a for i, a in enumerate(area)],
        "rooms": [rng.choice([1, 2, 3, 4, 5]) for _ in range(ROWS)],
        "garden": [rng.random() < 0.3 for _ in range(ROWS)],
        "region": [rng.choice(["north", "south", "east", "west"]) for _ in range(ROWS)],
        "price": price,
        "sold_for": [p + rng.gauss(0, 15) for p in price],
    }
    return pa.table(columns)


def write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pcsv.write_csv(table, path)
    return path


@pytest.fixture
def served(mlflow_server, tmp_path: Path):
    """A served run whose reference artifact is in both formats."""
    client = MlflowClient(mlflow_server.tracking_uri)
    experiment = f"ml/houses-{uuid.uuid4().hex[:8]}/prices"
    run = client.create_run(client.create_experiment(experiment))
    for suffix in ("parquet", "csv"):
        path = write(houses(1), tmp_path / f"reference.{suffix}")
        client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)
    return experiment, run.info.run_id


def monitor(
    mlflow_server, tmp_path: Path, served, suffix: str, day: str, table: pa.Table
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Upload the day's data and run `modelci monitor` on the production stand."""
    experiment, run_id = served
    data_uri = f"s3://{mlflow_server.s3.bucket}/monitoring-{uuid.uuid4().hex[:8]}/data/prices"
    key = data_uri.removeprefix(f"s3://{mlflow_server.s3.bucket}/") + f"/scores/{day}.{suffix}"
    local = write(table, tmp_path / f"today.{suffix}")
    mlflow_server.s3.client().put_object(
        Bucket=mlflow_server.s3.bucket, Key=key, Body=local.read_bytes()
    )
    repo = tmp_path / f"repo-{suffix}"
    repo.mkdir(exist_ok=True)
    (repo / "train.py").write_text("print('train')\n")
    (repo / "mlops.yaml").write_text(CONFIG.format(suffix=suffix))
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
        **mlflow_server.env,
        "MODELCI_PROJECT": "ml/houses",
        "MODELCI_EXPERIMENT": experiment,
        "MODELCI_ENVIRONMENT": "production",
        "MODELCI_DATA_URI": data_uri,
        "MLFLOW_RUN_ID": run_id,
        env_name("ds"): day,
    }
    argv = ["monitor", "--config", "mlops.yaml", "--model", "prices", "--stand", "production"]
    done = subprocess.run(
        [str(VENV_BIN / "modelci"), *argv],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, str(local)


def newest_monitoring_run(mlflow_server, experiment: str):
    client = MlflowClient(mlflow_server.tracking_uri)
    found = client.get_experiment_by_name(f"{experiment}/monitoring")
    (run, *_) = client.search_runs(
        [found.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )
    return run


def test_parquet_and_csv_days_log_the_same_figures_and_the_picture(
    mlflow_server, tmp_path: Path, served
) -> None:
    experiment, _ = served
    logged = {}
    for suffix in ("parquet", "csv"):
        done, local = monitor(mlflow_server, tmp_path, served, suffix, "2026-12-01", houses(2))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "retraining: none (every check passed)" in done.stdout
        assert "picture: artifact monitoring.svg of run " in done.stdout
        run = newest_monitoring_run(mlflow_server, experiment)
        logged[suffix] = run.data.metrics
        # The figures are those of the check on the same files, here.
        spec = load_config(tmp_path / f"repo-{suffix}" / "mlops.yaml").models[0].monitoring
        reference = tmp_path / f"reference.{suffix}"
        expected = evaluate(spec, open_table(reference, "ref"), open_table(Path(local), "today"))
        assert run.data.metrics == pytest.approx(expected.metrics, rel=1e-12)
        picture = Path(
            MlflowClient(mlflow_server.tracking_uri).download_artifacts(
                run.info.run_id, "monitoring.svg", str(tmp_path / f"picture-{suffix}")
            )
        )
        root = ET.fromstring(picture.read_bytes())
        shown = {"".join(node.itertext()) for node in root.iter("{http://www.w3.org/2000/svg}text")}
        assert {"area", "rooms", "garden", "region", "price", "max_psi 0.2"} <= shown
    assert logged["parquet"] == pytest.approx(logged["csv"], rel=1e-12)
    assert set(logged["csv"]) >= {"psi.region", "psi.garden", "rmse", "out_of_range.area"}


def test_a_data_problem_fails_the_check_and_does_not_retrain(
    mlflow_server, tmp_path: Path, served
) -> None:
    experiment, _ = served
    done, _ = monitor(
        mlflow_server, tmp_path, served, "parquet", "2026-12-02", houses(3, broken=True)
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED  null share of area: 10.00% of the rows are empty (max 5.00%)" in done.stdout
    assert "retraining: skip (data problems are not drift" in done.stdout
    assert "retraining NOT triggered" not in done.stdout  # the trigger was never tried
    run = newest_monitoring_run(mlflow_server, experiment)
    assert run.data.tags["modelci.monitor"] == "failed"
    assert run.data.tags["modelci.retrain.decision"] == "skip"
    assert run.data.tags["modelci.retrain.reason"].startswith("data problems are not drift")
