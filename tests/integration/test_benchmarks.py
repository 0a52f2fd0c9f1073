"""Small-N runs of every benchmark of the suite (`benchmarks/suite.py --quick`), so that none of
them rots; the figures are not judged here, only what each benchmark must show."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from tests.harness.tools import ROOT, VENV_PYTHON


@dataclass(frozen=True)
class Row:
    benchmark: str
    figure: str
    samples: int
    median: float
    floor: str
    note: str


def suite(benchmark: str, timeout: float = 900) -> list[Row]:
    """The table `suite.py --quick --only <benchmark>` prints, after asserting it exited 0."""
    result = subprocess.run(
        [str(VENV_PYTHON), str(ROOT / "benchmarks" / "suite.py"), "--quick", "--only", benchmark],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("benchmark "))
    rows = []
    for line in lines[header + 1 : -1]:
        n, _min, median, _max, _unit, floor, _ratio, *note = line[56:].split(None, 7)
        rows.append(Row(line[:14].strip(), line[15:55].strip(), int(n), float(median), floor,
                        " ".join(note)))  # fmt: skip
    assert rows and all(row.benchmark == benchmark and row.median > 0 for row in rows), rows
    assert lines[-1].endswith(f"{len(rows)} figures in {lines[-1].split()[-2]} s")
    return rows


def by_figure(rows: list[Row]) -> dict[str, Row]:
    return {row.figure: row for row in rows}


def network_calls(note: str) -> tuple[int, int]:
    """(HTTP requests, git remote calls) a job's floor counts, from its note."""
    found = re.search(r"waiting on (\d+) HTTP requests, (\d+) git remote calls", note)
    assert found, note
    return int(found[1]), int(found[2])


def test_job_overhead_times_every_job_of_a_push_its_memory_and_a_crowded_resolve() -> None:
    rows = by_figure(suite("jobs"))
    jobs = ["validate", "gate", "resolve", "deploy-batch", "deploy-online", "report"]
    # Each job's floor is a Python start plus its waits on the network calls it makes: MLflow
    # and S3 for resolve, the git remote for the deploys, nothing for validate.
    start = rows["python start"].median
    assert all(float(rows[job].floor) >= start for job in jobs)
    calls = {job: network_calls(rows[job].note) for job in jobs}
    assert calls["validate"] == (0, 0) and calls["resolve"][0] > 0, calls
    assert calls["deploy-batch"][1] > 0 and calls["deploy-online"][1] > 0, calls
    assert rows["push: 6 jobs summed"].median > rows["validate"].median
    assert "resolve among 200 runs" in rows
    memory = [f"peak memory {command}" for command in ["train", *jobs, "stop"]]
    assert all(rows[figure].median > 5 for figure in memory)  # MB: at least a Python


def test_deploy_size_reads_only_the_trees_above_the_environment() -> None:
    rows = suite("deploy-size")
    assert [row.figure for row in rows] == ["deploy among 10 envs", "deploy among 100 envs"]
    note = rows[-1].note  # "repo trees 316, the clone held 12"
    repo_trees, held = (int(part.split()[-1].replace(",", "")) for part in note.split(", ")[:2])
    assert held < repo_trees / 10, note


def test_concurrent_deploys_all_land() -> None:
    rows = by_figure(suite("concurrent"))
    assert rows["3 at once: one deploy"].note.startswith("landed 3/3, failed 0")
    assert rows["3 at once: wall"].note.endswith("serial landed 3")


def test_cleanup_removes_the_stale_environments_in_one_commit_per_repo() -> None:
    (timing, memory) = suite("cleanup")
    assert timing.figure == "12 envs, 10 stale"
    assert timing.note.startswith("removed 10, commits DAG repo 1, GitOps repo 1")
    assert memory.figure == "peak memory, 12 envs, 10 stale"


def test_dag_parse_compares_the_generated_dag_with_dag_factory_in_one_airflow() -> None:
    rows = suite("dag-parse")
    assert [row.figure for row in rows] == [
        "per DAG, modelci", "per DAG, dag-factory", "per DAG, one EmptyOperator",
    ]  # fmt: skip


def test_environment_archive_times_cold_archive_and_cache() -> None:
    rows = suite("environment")
    assert [row.figure for row in rows] == [
        "built cold", "unpacked from its archive", "found in the runner's cache",
    ]  # fmt: skip
    assert " MB" in rows[0].note


def test_commit_to_live_lists_a_committed_dag_with_the_recommended_setting() -> None:
    (row,) = suite("commit-to-live", timeout=600)
    assert row.figure == "DAG listed, recommended (10 s refresh)"
    assert row.median < 300


def test_monitoring_check_times_csv_and_parquet_against_reading_them_alone() -> None:
    rows = suite("monitoring")
    assert [row.figure for row in rows] == [
        "check, 20k rows x 20, CSV", "peak memory, 20k rows x 20, CSV",
        "check, 20k rows x 20, Parquet", "peak memory, 20k rows x 20, Parquet",
    ]  # fmt: skip
    assert all(row.floor != "-" for row in rows)  # each against reading the files alone
    assert "checks, " in rows[0].note and "picture" in rows[0].note
    assert rows[1].note.startswith("fits the pod's 2Gi request")


def test_fleet_builds_the_site_from_every_source_in_a_few_requests() -> None:
    rows = suite("fleet")
    assert [row.figure for row in rows] == [
        "build, 4 models, 20 envs, 14 days", "peak memory, 4 models, 20 envs, 14 days",
    ]  # fmt: skip
    note = rows[0].note
    counts = dict(re.findall(r"(MLflow|S3|GitLab|DAG bundle repo|GitOps repo) (\d+)", note))
    assert set(counts) == {"MLflow", "S3", "GitLab", "DAG bundle repo", "GitOps repo"}, note
    assert int(counts["DAG bundle repo"]) == int(counts["GitOps repo"]) == 1  # one tree read each
    assert int(counts["MLflow"]) < 20 and " pages" in note  # pages of searches, not a call per run
