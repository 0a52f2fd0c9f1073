"""Spark scoring against the single pod: where does a day of scoring outgrow one pod?

Generates a day of N rows (1, 5 and 20 million) of a feature table, 10 double features and a
customer id, as Parquet in `ds=<day>/`, and a scikit-learn model (Ridge, saved by MLflow with
its signature) trained in a model environment of its own (modelci's environment cache, the
same as tests/integration/test_spark_scoring.py's). Two processes then score the day, each
in that environment:

- Spark: modelci's scoring program (`jobs/spark_score.py`, what a Spark inference DAG's
  SparkApplication runs) on local Spark with 2 cores and a 1g driver: it checks the columns,
  scores with `mlflow.pyfunc.spark_udf` and writes the day as one Parquet file;
- the single pod: what an inference DAG's pod does, the whole day read into pandas and one
  `model.predict(frame)`, the predictions written as Parquet.

The figures are rows per second (Spark's, against the pod's as the floor: the ratio is the
speed-up) and peak memory: the largest sum of the proportional set sizes (PSS) of the process
and all its descendants (the JVM, its Python workers), sampled every 0.1 s: a page the forked
Python workers share counts once, as it does against a container's limit. The last figure
is the row count where the pod outgrows the memory its DAG requests by default (2Gi; the
limit equals the request, so the pod is killed there) while Spark stays below it: from the
sizes measured, and where the pod's memory per row puts it.

Run: .venv/bin/python benchmarks/spark_scoring.py [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, Figure, Finished, print_table

NAME = "spark-scoring"
PYTHON = "3.11"
ENV_CACHE = ROOT / ".cache" / "model-envs"
REQUIREMENTS = """\
mlflow==3.17.2
pyspark==4.3.0
scikit-learn==1.6.1
numpy==2.2.6
pandas==3.1.1
"""
FEATURES = [f"x{i}" for i in range(10)]
DAY = "2026-12-01"
CHUNK_ROWS = 1_000_000
SUBMIT_ARGS = (
    "--master local[2] --conf spark.driver.memory=1g --conf spark.ui.enabled=false pyspark-shell"
)
SAMPLE_SECONDS = 0.1
TRAIN = """
import sys
import numpy as np, pandas as pd, mlflow.sklearn
from sklearn.linear_model import Ridge
features = sys.argv[2].split(",")
rng = np.random.default_rng(7)
frame = pd.DataFrame(rng.normal(size=(5000, len(features))), columns=features)
target = frame.sum(axis=1) + rng.normal(size=len(frame))
mlflow.sklearn.save_model(Ridge().fit(frame, target), sys.argv[1], input_example=frame.head(3),
                          pip_requirements=["mlflow", "scikit-learn"])
"""
POD = """
import sys
import mlflow.pyfunc, pyarrow.parquet as pq
model = mlflow.pyfunc.load_model(sys.argv[1])
frame = pq.read_table(sys.argv[2]).to_pandas()
frame["score"] = model.predict(frame)
frame.to_parquet(sys.argv[3])
print(f"scored {len(frame)} rows in one process")
"""


def pod_memory_mb() -> float:
    """What an inference DAG's pod requests (and is limited to) by default, in MB."""
    from modelci.config.types import DEFAULT_RESOURCES

    quantity = DEFAULT_RESOURCES.memory  # "2Gi"
    powers = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4}
    unit = quantity[-2:] if quantity[-2:] in powers else ""
    number = float(quantity.removesuffix(unit))
    return number * 1024 ** powers.get(unit, 0) / 2**20


def model_environment() -> Path:
    """The scoring environment from the cache (built there the first time, about 30 s)."""
    from modelci.lifecycle.modelenv import COMPLETE_MARKER, MANIFEST, ensure_environment

    pins = set(REQUIREMENTS.split())
    for manifest in sorted(ENV_CACHE.glob(f"py{PYTHON}-*/{MANIFEST}")):
        locked = set(json.loads(manifest.read_text())["lock"].split())
        if pins <= locked and (manifest.parent / COMPLETE_MARKER).is_file():
            return manifest.parent
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(REQUIREMENTS)
        return ensure_environment(PYTHON, requirements, ENV_CACHE).path


def generate(day_dir: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    day_dir.mkdir(parents=True)
    writer = None
    for start in range(0, rows, CHUNK_ROWS):
        count = min(CHUNK_ROWS, rows - start)
        rng = np.random.default_rng(start)
        table = pa.table(
            {"customer_id": np.arange(start, start + count, dtype=np.int64)}
            | {name: rng.normal(size=count) for name in FEATURES}
        )
        writer = writer or pq.ParquetWriter(day_dir / "part-0.parquet", table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def _tree_pss_kb(pid: int) -> int:
    """The proportional set sizes of `pid` and all its descendants, summed: a page shared by
    several of them (Spark's forked Python workers) counts once in all (0 once it is gone)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        total += next(
            (int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")),
            0,
        )
    return total


def run_sampled(argv: list[str], cwd: Path, env: dict[str, str]) -> Finished:
    """Run a command to its end, sampling the memory of its whole process tree."""
    output = cwd / "output.txt"
    with output.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_pss_kb(process.pid))
            time.sleep(SAMPLE_SECONDS)
        seconds = time.perf_counter() - started
    text = output.read_text("utf-8", "replace")
    if process.returncode != 0:
        causes = [line for line in text.splitlines() if "Caused by" in line or "Error" in line]
        raise SystemExit(
            f"{' '.join(argv[:2])} exited {process.returncode}:\n"
            + "\n".join(causes[:10])
            + f"\n...\n{text[-3000:]}"
        )
    return Finished(seconds, peak / 1024, text)


def scoring_env(environment: Path) -> dict[str, str]:
    from modelci.lifecycle.modelenv import variables_for

    env = variables_for(environment, os.environ)
    env.update(
        PYSPARK_PYTHON=str(environment / "bin" / "python"),
        PYSPARK_SUBMIT_ARGS=SUBMIT_ARGS,
        PYTHONWARNINGS="ignore",
    )
    return env


def score_both(environment: Path, model: Path, base: Path, rows: int) -> tuple[Finished, Finished]:
    from modelci.render.spark import SCORING_PROGRAM

    python, env = str(environment / "bin" / "python"), scoring_env(environment)
    generate(base / "features" / f"ds={DAY}", rows)
    spark = run_sampled(
        [python, str(SCORING_PROGRAM),
         "--model-uri", str(model), "--input", str(base / "features"),
         "--partition", "ds", "--date", DAY, "--output", str(base / "scores"),
         "--prediction", "score"],
        base, env,
    )  # fmt: skip
    pod = run_sampled(
        [python, "-c", POD, str(model), str(base / "features" / f"ds={DAY}"),
         str(base / "pod.parquet")],
        base, env,
    )  # fmt: skip
    return spark, pod


def _short(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000}k"


def figures(quick: bool = False) -> list[Figure]:
    sizes = (50_000,) if quick else (1_000_000, 5_000_000, 20_000_000)
    environment, limit = model_environment(), pod_memory_mb()
    result, measured = [], []
    with tempfile.TemporaryDirectory(prefix="modelci-bench-spark-model-") as tmp:
        model_dir = Path(tmp) / "model"
        trained = subprocess.run(
            [str(environment / "bin" / "python"), "-c", TRAIN, str(model_dir), ",".join(FEATURES)],
            env=scoring_env(environment), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if trained.returncode != 0:
            raise SystemExit(f"training the benchmark's model failed:\n{trained.stderr[-3000:]}")
        for rows in sizes:
            with tempfile.TemporaryDirectory(prefix=f"modelci-bench-spark-{rows}-") as run:
                spark, pod = score_both(environment, model_dir, Path(run), rows)
            measured.append((rows, spark, pod))
            label = f"{_short(rows)} rows x {len(FEATURES)}"
            fits = "fits" if pod.peak_mb <= limit else "DOES NOT fit"
            result += [
                Figure(NAME, f"rows/s, {label}, Spark local[2]", "r/s", [rows / spark.seconds],
                       [rows / pod.seconds],
                       f"Spark {spark.seconds:.1f} s, pod {pod.seconds:.1f} s; floor: the single "
                       "pod (x floor: Spark's speed-up)"),
                Figure(NAME, f"peak memory, {label}, Spark local[2]", "MB", [spark.peak_mb],
                       [pod.peak_mb],
                       f"pod {pod.peak_mb:,.0f} MB: {fits} its {limit:,.0f} MB request; Spark "
                       f"{spark.peak_mb:,.0f} MB (JVM with a 1g heap and its Python workers)"),
            ]  # fmt: skip
    result.append(_outgrown(measured, limit))
    return result


def _outgrown(measured: list[tuple[int, Finished, Finished]], limit: float) -> Figure:
    """Where the pod outgrows `limit`: the row count the pod's memory per row (between the
    smallest and the largest size) puts it at, against Spark's peak, which does not grow with
    the day: the note names the first size measured where the pod is over `limit` and Spark
    under it, if any, and where the pod's memory passes Spark's."""
    (small, _, pod_small), (large, _, pod_large) = measured[0], measured[-1]
    per_row = (pod_large.peak_mb - pod_small.peak_mb) / (large - small) if large > small else 0
    spark_peak = max(spark.peak_mb for _, spark, _ in measured)

    def rows_at(memory: float) -> float:
        return small + (memory - pod_small.peak_mb) / per_row if per_row > 0 else float(large)

    first = next(
        (rows for rows, spark, pod in measured if pod.peak_mb > limit >= spark.peak_mb), None
    )
    seen = (
        f"measured: the pod over it and Spark under it at {first:,} rows"
        if first
        else "no size measured has the pod over it and Spark under it"
    )
    spark_peaks = ", ".join(f"{spark.peak_mb:,.0f}" for _, spark, _ in measured)
    return Figure(
        NAME,
        f"rows where the pod outgrows {limit / 1024:g}Gi",
        "rows",
        [max(rows_at(limit), 1.0)],
        None,
        f"the pod takes {per_row * 1e6:,.0f} MB per million rows; Spark's peak does not grow "
        f"with the day ({spark_peaks} MB), and the pod's passes it at "
        f"{max(rows_at(spark_peak), 1.0):,.0f} rows; {seen}",
    )


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
