"""Spark scoring with real local Spark (2 cores), through the program a Spark inference DAG's
SparkApplication runs (jobs/spark_score.py, staged as its main file), in a model environment
built by modelci from requirements that pin other versions than modelci's own (scikit-learn,
numpy): a generated table of several million rows is scored, the predictions equal those of
the single-pod path (a scoring pod's `mlflow.pyfunc.load_model(...).predict(frame)`) row for
row, a re-run of the day leaves the same output and no other day changes, and a missing
partition, a missing column or a mistyped column each stops the run before scoring, with the
message, writing nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sklearn

from modelci.config.types import SPARK_DAY_FILE, Monitoring
from modelci.lifecycle.modelenv import (
    COMPLETE_MARKER,
    MANIFEST,
    ensure_environment,
    variables_for,
)
from modelci.monitoring.checks import evaluate
from modelci.monitoring.tables import open_table
from modelci.render.spark import SCORING_PROGRAM

ROOT = Path(__file__).resolve().parents[2]
ENV_CACHE = ROOT / ".cache" / "model-envs"  # the harness's cache: built once per lock
PYTHON = "3.11"
# Versions modelci's own environment does not have (it has scikit-learn 1.9, numpy 2.4).
MODEL_REQUIREMENTS = """\
mlflow==3.17.2
pyspark==4.3.0
scikit-learn==1.6.1
numpy==2.2.6
pandas==3.1.1
"""
MODEL_SKLEARN = "1.6.1"
FEATURES = ("a", "b", "c", "d")
ROWS = 3_000_000
DAY, OTHER_DAY = "2026-12-01", "2026-11-30"
NO_PARTITION_DAY, NO_COLUMN_DAY, MISTYPED_DAY = "2026-12-03", "2026-12-04", "2026-12-05"
PREDICTION = "score"
SUBMIT_ARGS = (
    "--master local[2] --conf spark.driver.memory=1g --conf spark.ui.enabled=false pyspark-shell"
)

# Run in the model's environment: a scikit-learn regression logged as MLflow saves it, with
# the signature its input example gives (four double columns).
TRAIN = """
import sys
import numpy as np, pandas as pd, mlflow, mlflow.sklearn, sklearn
from sklearn.linear_model import Ridge
rng = np.random.default_rng(7)
frame = pd.DataFrame(rng.normal(size=(5000, 4)), columns=list("abcd"))
target = 2 * frame.a + frame.b - 0.5 * frame.c + rng.normal(size=len(frame))
mlflow.sklearn.save_model(
    Ridge().fit(frame, target),
    sys.argv[1],
    input_example=frame.head(3),
    pip_requirements=[f"{name}=={version}" for name, version in (
        ("mlflow", mlflow.__version__), ("scikit-learn", sklearn.__version__),
        ("numpy", np.__version__), ("pandas", pd.__version__),
    )],  # listed, not inferred: inference takes seconds
)
"""
# The single-pod path, as a scoring pod runs it: the whole day in pandas, one predict call.
POD = """
import sys
import mlflow.pyfunc, pyarrow.parquet as pq
model = mlflow.pyfunc.load_model(sys.argv[1])
frame = pq.read_table(sys.argv[2]).to_pandas()
frame["score"] = model.predict(frame)
frame[["customer_id", "score"]].to_parquet(sys.argv[3])
"""
# The scoring program's entry point (its `__main__` is `sys.exit(main())`), once per argument
# list, in one process (one JVM start for all). After each run: its exit code and output, and
# the output directory as it then is: each file's name and sha256, and for the scored day the
# sha256 of its (customer_id, score) pairs in customer order (a file's row order may vary).
RUNS = """
import contextlib, hashlib, io, json, pathlib, sys
import pyarrow.compute as pc, pyarrow.parquet as pq
sys.path.insert(0, sys.argv[1])
import spark_score
output, day_file = pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4])
results = []
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = spark_score.main(argv)
    files = {
        str(p.relative_to(output)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(output.rglob("*")) if p.is_file()
    }
    table = pq.read_table(day_file, columns=["customer_id", "score"])
    table = table.take(pc.sort_indices(table, [("customer_id", "ascending")]))
    pairs = b"".join(c.to_numpy().tobytes() for c in table.columns)
    day = hashlib.sha256(pairs).hexdigest()
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                    "files": files, "day": day})
print("RESULTS " + json.dumps(results))
"""


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model's environment from the harness's cache, built there the first time."""
    pins = set(MODEL_REQUIREMENTS.split())
    for manifest in sorted(ENV_CACHE.glob(f"py{PYTHON}-*/{MANIFEST}")):
        locked = set(json.loads(manifest.read_text())["lock"].split())
        if pins <= locked and (manifest.parent / COMPLETE_MARKER).is_file():
            return manifest.parent  # found without locking again (uv: seconds)
    requirements = tmp_path_factory.mktemp("model") / "requirements.txt"
    requirements.write_text(MODEL_REQUIREMENTS)
    return ensure_environment(PYTHON, requirements, ENV_CACHE).path


def in_environment(environment: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = variables_for(environment, os.environ)
    env.update(PYSPARK_PYTHON=str(environment / "bin" / "python"), PYSPARK_SUBMIT_ARGS=SUBMIT_ARGS)
    env["PYTHONWARNINGS"] = "ignore"  # pyspark's notice about pandas 3 on every worker
    return subprocess.run(
        [str(environment / "bin" / "python"), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def write_day(table_dir: Path, day: str, table: pa.Table) -> None:
    partition = table_dir / f"ds={day}"
    partition.mkdir(parents=True)
    pq.write_table(table, partition / "part-0.parquet")


def features(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"customer_id": np.arange(rows, dtype=np.int64)} | {
        name: rng.normal(size=rows) for name in FEATURES
    }


def scores_by_customer(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(path, columns=["customer_id", PREDICTION])
    order = pc.sort_indices(table, [("customer_id", "ascending")])
    table = table.take(order)
    return table["customer_id"].to_numpy(), table[PREDICTION].to_numpy()


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def arguments(where: Path, day: str) -> list[str]:
    """The program's arguments as the SparkApplication passes them (render/spark.py)."""
    return [
        "--model-uri", str(where / "model"),
        "--input", str(where / "features"),
        "--format", "parquet",
        "--partition", "ds",
        "--output", str(where / "scores"),
        "--prediction", PREDICTION,
        "--date", day,
    ]  # fmt: skip


def test_a_day_of_millions_of_rows_scores_on_local_spark_as_a_pod_would(
    environment: Path, tmp_path: Path
) -> None:
    trained = in_environment(environment, "-c", TRAIN, str(tmp_path / "model"), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    pinned = (tmp_path / "model" / "requirements.txt").read_text()
    assert f"scikit-learn=={MODEL_SKLEARN}" in pinned
    assert sklearn.__version__ != MODEL_SKLEARN  # the model's versions are not modelci's
    table_dir = tmp_path / "features"
    write_day(table_dir, DAY, pa.table(features(ROWS, seed=1)))
    small = features(1000, seed=2)
    write_day(table_dir, NO_COLUMN_DAY, pa.table({k: v for k, v in small.items() if k != "d"}))
    write_day(table_dir, MISTYPED_DAY, pa.table(small | {"c": small["c"].astype(str)}))
    # A day scored before: no run of another day may touch it.
    earlier = tmp_path / "scores" / f"ds={OTHER_DAY}"
    earlier.mkdir(parents=True)
    pq.write_table(pa.table({"customer_id": [1], PREDICTION: [0.5]}), earlier / SPARK_DAY_FILE)

    day_file = tmp_path / "scores" / f"ds={DAY}" / SPARK_DAY_FILE
    runs = in_environment(
        environment,
        "-c",
        RUNS,
        str(SCORING_PROGRAM.parent),
        json.dumps(
            [
                arguments(tmp_path, DAY),
                arguments(tmp_path, DAY),  # the day again
                arguments(tmp_path, NO_PARTITION_DAY),
                arguments(tmp_path, NO_COLUMN_DAY),
                arguments(tmp_path, MISTYPED_DAY),
            ]
        ),
        str(tmp_path / "scores"),
        str(day_file),
        cwd=tmp_path,
    )

    assert runs.returncode == 0, runs.stderr[-3000:]
    first, rerun, *refusals = json.loads(runs.stdout.split("RESULTS ", 1)[1])
    assert first["code"] == 0, first["stderr"][-3000:]
    assert f"scored {ROWS} rows of {DAY} into {day_file}" in first["stdout"]
    assert pq.read_schema(day_file).names == ["customer_id", *FEATURES, PREDICTION]
    customers, spark_scores = scores_by_customer(day_file)
    assert np.array_equal(customers, np.arange(ROWS))  # every row once

    pod = in_environment(
        environment,
        "-c",
        POD,
        str(tmp_path / "model"),
        str(table_dir / f"ds={DAY}"),
        str(tmp_path / "pod.parquet"),
        cwd=tmp_path,
    )
    assert pod.returncode == 0, pod.stderr[-3000:]
    pod_customers, pod_scores = scores_by_customer(tmp_path / "pod.parquet")
    assert np.array_equal(pod_customers, customers)
    assert np.array_equal(spark_scores, pod_scores)  # the same model, the same predictions
    assert np.std(spark_scores) > 1  # a real regression's output, not a constant

    # Monitoring reads the day as it reads a scoring pod's file: drift against a sample of
    # the same population finds none.
    reference = tmp_path / "reference.csv"
    pq.read_table(table_dir / f"ds={NO_COLUMN_DAY}").to_pandas().assign(
        d=small["d"], score=0.0
    ).to_csv(reference, index=False)
    spec = Monitoring(data=f"scores/ds=${{ds}}/{SPARK_DAY_FILE}", reference="reference.csv",
                      features=FEATURES)  # fmt: skip
    result = evaluate(spec, open_table(reference, "reference.csv"), open_table(day_file, "day"))
    assert result.passed, result.failures
    assert result.metrics["rows"] == ROWS
    assert all(result.metrics[f"psi.{name}"] < 0.05 for name in FEATURES)

    # The re-run replaced the day with the same predictions; no other day changed.
    assert rerun["code"] == 0, rerun["stderr"][-3000:]
    assert sorted(rerun["files"]) == sorted(first["files"])
    earlier_file = f"ds={OTHER_DAY}/{SPARK_DAY_FILE}"
    assert rerun["files"][earlier_file] == first["files"][earlier_file]
    assert rerun["day"] == first["day"]

    no_partition, no_column, mistyped = refusals
    refused = "modelci spark scoring: error: "
    assert no_partition["stderr"].startswith(
        f"{refused}the input partition {table_dir}/ds={NO_PARTITION_DAY} does not exist"
    )
    assert no_column["stderr"].startswith(
        f"{refused}{table_dir}/ds={NO_COLUMN_DAY} does not match the model's signature "
        "(missing column(s): d; its columns: customer_id long, a double, b double, c double)"
    )
    assert mistyped["stderr"].startswith(
        f"{refused}{table_dir}/ds={MISTYPED_DAY} does not match the model's signature "
        "(mistyped column(s): c is string, expected double;"
    )
    for result in refusals:
        assert result["code"] == 2
        assert "Nothing was scored or written" in result["stderr"]
        assert result["files"] == rerun["files"]  # nothing written
