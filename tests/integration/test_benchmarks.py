"""Small-N runs of the benchmarks, so that none of them rots; the figures are not judged here."""

from __future__ import annotations

import subprocess

from tests.harness.tools import ROOT, VENV_PYTHON


def benchmark(script: str, *args: str, timeout: float = 300) -> str:
    """What `benchmarks/<script>` prints, after asserting it exited 0."""
    result = subprocess.run(
        [str(VENV_PYTHON), str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_concurrent_deploys_benchmark_runs_and_every_deploy_lands() -> None:
    stdout = benchmark("concurrent_deploys.py", "--sizes", "3")

    rows = [line.split() for line in stdout.splitlines()[1:]]
    assert [row[:4] for row in rows] == [["3", "serial", "3", "0"], ["3", "burst", "3", "0"]]


def test_cleanup_benchmark_runs_and_makes_one_commit_per_repo() -> None:
    stdout = benchmark("cleanup.py", "--environments", "12", "--live", "2", "--repeat", "1")
    assert "removed 10, commits DAG repo 1, GitOps repo 1" in stdout


def test_environment_archive_benchmark_runs_cold_archive_and_cache() -> None:
    stdout = benchmark("env_archive.py", "--repeat", "1", timeout=900)
    labels = [line.split()[0] for line in stdout.splitlines()[1:]]
    assert labels == ["cold", "archive", "cache", "archive"]  # the last line: its size
    assert " MB (tar.gz)" in stdout


def test_commit_to_listed_benchmark_runs_with_the_recommended_setting() -> None:
    stdout = benchmark("commit_to_listed.py", "--settings", "recommended", timeout=600)
    (row,) = [line.split() for line in stdout.splitlines()[1:]]
    assert row[:3] == ["recommended", "10", "s"]


def test_job_overhead_benchmark_times_every_non_training_job_of_a_push() -> None:
    stdout = benchmark("job_overhead.py", "--repeat", "1", timeout=900)
    lines = stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("job ")) :]
    assert [line.split()[0] for line in table[1:8]] == [
        "floor", "validate", "gate", "resolve", "deploy-batch", "deploy-online", "report",
    ]  # fmt: skip
    assert "sum of medians over 6 jobs:" in stdout
