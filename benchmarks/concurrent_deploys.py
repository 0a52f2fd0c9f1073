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

Run: .venv/bin/python benchmarks/concurrent_deploys.py [--sizes 16,32,64] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from modelci.naming import names_for  # noqa: E402
from tests.harness.gitremotes import make_bare_repo  # noqa: E402

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
    wall: float


def make_workdir(base: Path) -> Path:
    """A model repository with the state resolve would have written."""
    work = base / "model"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__", ".modelci"))
    state = work / ".modelci" / "churn" / "resolve.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps(STATE))
    return work


def deploy(work: Path, remote: Path, branch: str) -> tuple[bool, float, str]:
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
    return result.returncode == 0, time.monotonic() - started, result.stderr.strip()


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
    errors = sorted({err.splitlines()[-1] for ok, _, err in results if not ok})
    for error in errors[:3]:
        print(f"    failure: {error[:200]}", file=sys.stderr)
    return Burst(
        mode="burst" if concurrent else "serial",
        size=size,
        landed=landed(remote, branches),
        failed=sum(not ok for ok, _, _ in results),
        seconds=[seconds for _, seconds, _ in results],
        wall=wall,
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,32,64")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(
        f"{'burst':>5}  {'mode':<6}  {'landed':>6}  {'failed':>6}  {'p50 s':>6}  "
        f"{'p95 s':>6}  {'wall s':>7}  {'wall/serial':>11}"
    )
    with tempfile.TemporaryDirectory(prefix="modelci-bench-") as tmp:
        for size in sizes:
            serial = run_burst(Path(tmp), size, concurrent=False, tag=f"serial-{size}")
            rows = [serial] + [
                run_burst(Path(tmp), size, concurrent=True, tag=f"burst-{size}-{n}")
                for n in range(args.repeat)
            ]
            for row in rows:
                ratio = row.wall / serial.wall
                print(
                    f"{row.size:>5}  {row.mode:<6}  {row.landed:>6}  {row.failed:>6}  "
                    f"{statistics.median(row.seconds):>6.2f}  "
                    f"{percentile(row.seconds, 0.95):>6.2f}  {row.wall:>7.1f}  {ratio:>11.2f}"
                )


if __name__ == "__main__":
    main()
