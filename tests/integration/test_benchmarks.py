"""Small-N runs of the benchmarks, so that none of them rots; the figures are not judged here."""

from __future__ import annotations

import subprocess

from tests.harness.tools import ROOT, VENV_PYTHON


def test_concurrent_deploys_benchmark_runs_and_every_deploy_lands() -> None:
    result = subprocess.run(
        [str(VENV_PYTHON), str(ROOT / "benchmarks" / "concurrent_deploys.py"), "--sizes", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [row[:4] for row in rows] == [["3", "serial", "3", "0"], ["3", "burst", "3", "0"]]


def test_cleanup_benchmark_runs_and_makes_one_commit_per_repo() -> None:
    result = subprocess.run(
        [
            str(VENV_PYTHON),
            str(ROOT / "benchmarks" / "cleanup.py"),
            *("--environments", "12", "--live", "2", "--repeat", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "removed 10, commits DAG repo 1, GitOps repo 1" in result.stdout
