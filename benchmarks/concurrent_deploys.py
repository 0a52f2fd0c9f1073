"""Do concurrent deploys into one shared repo all land, and how long does a burst take?

Many model repositories push to the same GitOps repo; `resource_group` serialises jobs of one
project only. This starts N real `modelci deploy-online` processes at once (each a different
branch, so a different environment) against one local bare repo, and the same N one after
another, and prints for each burst size: how many landed (checked file by file in the repo
afterwards), how many failed, the p50/p95 time of one process, and the burst's wall time
against the serial run's.

Needs only git and the project's virtualenv (`modelci` on it); no server. Each process gets
the resolved state a pipeline's resolve job would have left (`.modelci/churn/resolve.json`),
so `deploy-online` does its real work: build and check the values, then one commit.

Figures per burst size: one process's wall time in the burst (landed, failed and p95 in the
note), and the burst's wall time against the serial run's (the floor).

Run: .venv/bin/python benchmarks/concurrent_deploys.py [--quick]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import git
from common import ROOT, Figure, percentile, print_table

from modelci.config.naming import names_for
from tests.harness.gitremotes import make_bare_repo

NAME = "concurrent"
MODELCI = Path(sys.executable).parent / "modelci"
EXAMPLE = ROOT / "examples" / "churn"
PROJECT = "ml/churn"
STATE = {
    "run_id": "0123456789abcdef0123456789abcdef",
    "experiment_id": "1",
    "model_uri": "models:/m-0123",
    "storage_uri": "s3://mlops/mlflow-artifacts/1/models/m-0123/artifacts",
}


@dataclass(frozen=True)
class Burst:
    mode: str
    size: int
    landed: int
    failed: int
    seconds: list[float]
    attempts: list[int]
    wall: float


def make_workdir(base: Path) -> Path:
    """A model repository with the state resolve would have written."""
    work = base / "model"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__", ".modelci"))
    state = work / ".modelci" / "churn" / "resolve.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps(STATE))
    return work


@dataclass(frozen=True)
class Deploy:
    ok: bool
    seconds: float
    attempts: int  # pushes tried, the one that landed included
    error: str


def deploy(work: Path, remote: Path, branch: str) -> Deploy:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MODELCI_"))}
    env.update(
        CI_PROJECT_PATH=PROJECT,
        CI_COMMIT_REF_NAME=branch,
        CI_COMMIT_SHA="0" * 40,
        CI_PIPELINE_ID="1",
        MODELCI_GITOPS_REPO_URL=remote.as_uri(),
        MODELCI_INGRESS_DOMAIN="models.example.com",
        MLFLOW_TRACKING_URI="http://mlflow.example.com",
    )
    started = time.monotonic()
    result = subprocess.run(
        [str(MODELCI), "deploy-online"], cwd=work, env=env, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    retried = re.search(r"after (\d+) attempts", result.stdout)
    attempts = int(retried.group(1)) if retried else 1
    return Deploy(result.returncode == 0, seconds, attempts, result.stderr.strip())


def landed(remote: Path, branches: list[str]) -> int:
    tree = git.Repo(remote).commit("main").tree
    present = {blob.path for blob in tree.traverse() if blob.type == "blob"}
    return sum(names_for(PROJECT, b, "churn").values_path in present for b in branches)


def run_burst(base: Path, size: int, *, concurrent: bool, tag: str) -> Burst:
    remote = make_bare_repo(base / f"{tag}.git")
    work = make_workdir(base / tag)
    branches = [f"feature/{tag}-{i}" for i in range(size)]
    started = time.monotonic()
    if concurrent:
        with ThreadPoolExecutor(max_workers=size) as pool:
            results = list(pool.map(lambda b: deploy(work, remote, b), branches))
    else:
        results = [deploy(work, remote, b) for b in branches]
    wall = time.monotonic() - started
    errors = sorted({d.error.splitlines()[-1] for d in results if not d.ok})
    for error in errors[:3]:
        print(f"    failure: {error[:200]}", file=sys.stderr)
    return Burst(
        mode="burst" if concurrent else "serial",
        size=size,
        landed=landed(remote, branches),
        failed=sum(not d.ok for d in results),
        seconds=[d.seconds for d in results],
        attempts=[d.attempts for d in results],
        wall=wall,
    )


def figures(quick: bool = False) -> list[Figure]:
    result = []
    with tempfile.TemporaryDirectory(prefix="modelci-bench-") as tmp:
        for size in (3,) if quick else (16, 32, 64):
            serial = run_burst(Path(tmp), size, concurrent=False, tag=f"serial-{size}")
            burst = run_burst(Path(tmp), size, concurrent=True, tag=f"burst-{size}")
            outcome = f"landed {burst.landed}/{size}, failed {burst.failed}"
            note = (
                f"{outcome}, p95 {percentile(burst.seconds, 0.95):.2f} s, attempts median "
                f"{statistics.median(burst.attempts):g} max {max(burst.attempts)}"
            )
            result += [
                Figure(NAME, f"{size} at once: one deploy", "s", burst.seconds, note=note),
                Figure(NAME, f"{size} at once: wall", "s", [burst.wall], [serial.wall],
                       f"floor: the {size} one after another; serial landed {serial.landed}"),
            ]  # fmt: skip
    return result


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
