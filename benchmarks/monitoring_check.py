"""What does one monitoring check cost, in time and memory, over a large day of data?

Generates a reference and a day of N rows (1 million, then 10 million) with 20 features of
every kind (12 continuous, 2 mostly zero, 2 binary, 2 low-cardinality, 2 categorical), a
score and a label, as CSV and as Parquet. A process of its own then runs what the monitoring
pod runs once the two files are on its disk: every check of `modelci.monitoring.checks.evaluate`
(PSI per column by its kind, null shares, a range, RMSE against the label) and the picture
(`drift_svg`). The floor is a process that reads the same two files alone, every batch of the
same columns with the same reader, and computes nothing. The figures are the wall time and
the peak resident memory (`ru_maxrss`) of each; the note of the largest says whether the
check fits the memory the monitoring pod requests by default (2Gi). Downloading the files
from S3 and MLflow and logging the results are not counted: they stream, and cost the same
whatever the check does.

Run: .venv/bin/python benchmarks/monitoring_check.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from common import Figure, Finished, print_table, run_process

NAME = "monitoring"
POD_MEMORY_MB = 2048  # the monitoring pod's default memory request, 2Gi (config.py)
CHUNK_ROWS = 500_000
CONTINUOUS = [f"x{i:02d}" for i in range(12)]
MOSTLY_ZERO = ["claims", "refunds"]
BINARY = ["has_app", "paid_late"]
LOW_CARDINALITY = ["rooms", "rating"]
CATEGORICAL = ["region", "plan"]
FEATURES = [*CONTINUOUS, *MOSTLY_ZERO, *BINARY, *LOW_CARDINALITY, *CATEGORICAL]
FORMATS = {"csv": "CSV", "parquet": "Parquet"}
DRIVER = """
import sys
from pathlib import Path
from modelci.config.types import GroundTruth, Monitoring
from modelci.monitoring.tables import batches, open_table
mode, reference, today, *features = sys.argv[1:]
tables = [open_table(Path(reference), "reference"), open_table(Path(today), "today")]
if mode == "read":
    columns = [*features, "score", "label"]
    rows = sum(len(batch["score"]) for table in tables for batch in batches(table, columns))
    print(f"read {rows} rows")
else:
    from modelci.monitoring.drift_svg import drift_svg
    from modelci.monitoring.checks import evaluate
    spec = Monitoring(
        data="scores/${ds}", reference="reference", features=tuple(features), score="score",
        ranges=(("x00", -100.0, 200.0), ("rooms", 1.0, 6.0)), max_null_share=0.01,
        ground_truth=GroundTruth(label="label", metric="rmse", max=10.0),
    )
    result = evaluate(spec, *tables)
    picture = drift_svg("benchmark", result.distributions, spec.max_psi)
    print(f"{len(result.checks)} checks, {len(result.failures)} failed, picture {len(picture)} B")
"""


def chunk(seed: int, rows: int, shift: float):
    """`rows` rows of the table (numpy and pyarrow only here, not in the timed processes)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns = {}
    for index, name in enumerate(CONTINUOUS):
        columns[name] = np.round(rng.normal(50 + index + shift, 5 + index, rows), 3)
    for name in MOSTLY_ZERO:
        tail = np.round(rng.lognormal(3, 1, rows), 2)
        columns[name] = np.where(rng.random(rows) < 0.9, 0.0, tail)
    for name in BINARY:
        columns[name] = (rng.random(rows) < 0.2).astype(np.int8)
    columns["rooms"] = rng.integers(1, 7, rows)
    columns["rating"] = rng.integers(1, 6, rows)
    for name, words in (("region", ["north", "south", "east", "west"]), ("plan", ["a", "b"])):
        columns[name] = pa.array(np.array(words)[rng.integers(0, len(words), rows)])
    score = np.round(columns["x00"] * 0.5 + columns["x01"] * 0.3, 3)
    columns["score"] = score
    columns["label"] = np.round(score + rng.normal(0, 3, rows), 3)
    return pa.table(columns)


def generate(base: Path, rows: int) -> dict[str, tuple[Path, Path]]:
    """The reference and a day (a little shifted), as CSV and as Parquet: {format: files}."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    files = {}
    for fmt in ("csv", "parquet"):
        files[fmt] = (base / f"reference.{fmt}", base / f"today.{fmt}")
    for index, (seed, shift) in enumerate(((1, 0.0), (2, 0.3))):  # the reference, the day
        first = chunk(seed, min(rows, CHUNK_ROWS), shift)
        csv_writer = pcsv.CSVWriter(files["csv"][index], first.schema)
        parquet_writer = pq.ParquetWriter(files["parquet"][index], first.schema)
        written, part, table = 0, 0, first
        while True:
            csv_writer.write_table(table)
            parquet_writer.write_table(table)
            written += table.num_rows
            if written >= rows:
                break
            part += 1
            table = chunk(seed * 1000 + part, min(rows - written, CHUNK_ROWS), shift)
        csv_writer.close()
        parquet_writer.close()
    return files


def _short(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000}k"


def measure(files: tuple[Path, Path], mode: str, base: Path) -> Finished:
    argv = [sys.executable, "-c", DRIVER, mode, str(files[0]), str(files[1]), *FEATURES]
    return run_process(argv, base, dict(os.environ))


def figures(quick: bool = False) -> list[Figure]:
    sizes = ((20_000, 1),) if quick else ((1_000_000, 3), (10_000_000, 1))
    result = []
    for rows, repeat in sizes:
        with tempfile.TemporaryDirectory(prefix=f"modelci-bench-monitoring-{rows}-") as tmp:
            base = Path(tmp)
            files = generate(base, rows)
            for fmt, pair in files.items():
                checks = [measure(pair, "check", base) for _ in range(repeat)]
                reads = [measure(pair, "read", base) for _ in range(repeat)]
                size = sum(path.stat().st_size for path in pair) / (1 << 20)
                label = f"{_short(rows)} rows x {len(FEATURES)}, {FORMATS[fmt]}"
                peak = max(check.peak_mb for check in checks)
                fits = "fits" if peak < POD_MEMORY_MB else "DOES NOT fit"
                note = (
                    f"reference and day {size:,.0f} MB on disk, {rows:,} rows each; "
                    f"{checks[0].output.strip()}; floor: reading both files alone"
                )
                memory_note = f"{fits} the pod's 2Gi request ({peak:,.0f} of {POD_MEMORY_MB} MB)"
                result += [
                    Figure(NAME, f"check, {label}", "s", [c.seconds for c in checks],
                           [r.seconds for r in reads], note),
                    Figure(NAME, f"peak memory, {label}", "MB", [c.peak_mb for c in checks],
                           [r.peak_mb for r in reads], memory_note),
                ]  # fmt: skip
    return result


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
