"""What does each job of a push cost, besides training: the package as the image installs it,
against real services?

Starts a real SeaweedFS S3 and MLflow server (the test harness's), bare git remotes, and a
clean virtualenv with the wheel and its runtime dependencies only (the image's contents);
trains the example model once (not timed), then runs each non-training job of a push several
times from that virtualenv, as GitLab would: validate, gate, resolve, deploy-batch,
deploy-online, report. The floor is a bare start of the same Python (`python -c pass`); each
row prints min/median/max wall time, the median above the floor, and the ratio to it. The
last line sums the medians. Deploys after the first find their files already there (no
commit): the usual case of a re-run, and the part that is modelci's own.

Run: .venv/bin/python benchmarks/job_overhead.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import git  # noqa: E402

from tests.harness.gitremotes import make_bare_repo  # noqa: E402
from tests.harness.lifecycle import GITLAB_HOST, LocalPlatform, make_model_repo  # noqa: E402
from tests.harness.mlflowserver import start_mlflow  # noqa: E402
from tests.harness.package import (  # noqa: E402
    build_wheel,
    clean_env,
    copy_repository,
    product_venv,
)
from tests.harness.processes import stop_all  # noqa: E402
from tests.harness.s3server import start_seaweedfs  # noqa: E402

PROJECT = "bench/overhead"
BRANCH = "feature/overhead"
HEADER = f"{'job':<14} {'min s':>7} {'med s':>7} {'max s':>7} {'above s':>9} {'x floor':>8}"
JOBS = ("validate", "gate", "resolve", "deploy-batch", "deploy-online", "report")


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def job_env(venv: Path, platform: LocalPlatform, repo: Path) -> dict[str, str]:
    server = f"https://{GITLAB_HOST}"
    sha = git.Repo(repo).head.commit.hexsha
    return clean_env(
        venv,
        {
            **platform.ci_variables(),
            "CI": "true",
            "CI_SERVER_URL": server,
            "CI_PROJECT_PATH": PROJECT,
            "CI_PROJECT_URL": f"{server}/{PROJECT}",
            "CI_DEFAULT_BRANCH": "main",
            "CI_COMMIT_REF_NAME": BRANCH,
            "CI_COMMIT_BRANCH": BRANCH,
            "CI_COMMIT_SHA": sha,
            "CI_PIPELINE_ID": "1",
            "GITLAB_USER_LOGIN": "bench",
        },
    )


def profile(python: str, job: str, repo: Path, env: dict[str, str], output: Path) -> str:
    """cProfile's 25 costliest calls (cumulative) of one run of `job`."""
    argv = [python, "-m", "cProfile", "-o", str(output), "-m", "modelci", job]
    subprocess.run(argv, cwd=repo, env=env, capture_output=True, check=True)
    import io
    import pstats

    text = io.StringIO()
    pstats.Stats(str(output), stream=text).sort_stats("cumulative").print_stats(25)
    return f"--- {job}\n{text.getvalue()}"


def row(label: str, seconds: list[float], floor: float) -> str:
    median = statistics.median(seconds)
    return (
        f"{label:<14} {min(seconds):7.2f} {median:7.2f} {max(seconds):7.2f}"
        f" {median - floor:9.2f} {median / floor:8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--profile", action="append", default=[], help="also print cProfile's top of this job"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelci-bench-jobs-") as tmp:
        base = Path(tmp)
        venv = product_venv(build_wheel(copy_repository(base / "src"), base / "wheel"))
        s3 = start_seaweedfs(base / "s3")
        try:
            mlflow = start_mlflow(base / "mlflow", s3)
            platform = LocalPlatform(
                s3,
                mlflow,
                make_bare_repo(base / "dags.git"),
                make_bare_repo(base / "gitops.git"),
            )
            repo = make_model_repo(base / "model", project=PROJECT, branch=BRANCH)
            env = job_env(venv, platform, repo)
            modelci = str(venv / "bin" / "modelci")
            timed([modelci, "train"], repo, env)  # not measured: builds or finds the env
            python = str(venv / "bin" / "python")
            floor_runs = [timed([python, "-c", "pass"], repo, env) for _ in range(args.repeat)]
            floor = statistics.median(floor_runs)
            print(
                f"{'job':<14} {'min s':>7} {'med s':>7} {'max s':>7} {'above s':>9} {'x floor':>8}"
            )
            print(row("floor", floor_runs, floor))
            total = 0.0
            for job in JOBS:
                runs = [timed([modelci, job], repo, env) for _ in range(args.repeat)]
                total += statistics.median(runs)
                print(row(job, runs, floor))
            print(f"sum of medians over {len(JOBS)} jobs: {total:.2f} s")
            for job in args.profile:
                print(profile(python, job, repo, env, base / f"{job}.prof"))
        finally:
            stop_all()


if __name__ == "__main__":
    main()
