"""What does each job of a push cost besides training, how much memory does each command take,
and how long does resolve take among 20,000 runs? The package as the image installs it,
against real services.

Starts a real SeaweedFS S3 and MLflow server (the test harness's), bare git remotes, and a
clean virtualenv with the wheel and its runtime dependencies only (the image's contents);
trains the example model once (not timed), then runs each non-training job of a push several
times from that virtualenv, as GitLab would: validate, gate, resolve, deploy-batch,
deploy-online, report. Deploys after the first find their files already there (no commit):
the usual case of a re-run, and the part that is modelci's own.

Floors: for each job, a bare start of the same Python (`python -c pass`) plus the time the
job waits on the network calls it makes (MLflow, S3, the git remotes), measured in separate
runs of the same job with `netwait/sitecustomize.py` on its path; the six jobs' floors summed
for the push; the bare start's resident memory for each command's peak memory; and resolve
with only the branch's own runs for resolve among 20,000 runs. For that last figure it adds
20,000 FINISHED, gated runs of 1,000 other branches to the model's experiment, written with
MLflow's own SQL models into the server's database (the REST API would take minutes for the
set-up alone).

Run: .venv/bin/python benchmarks/job_overhead.py [--quick]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import git
from common import Figure, print_table, run_process

from modelci.systems.tracking import GATE_PASSED, TAG_BRANCH, TAG_ENVIRONMENT, TAG_GATE
from tests.harness.gitremotes import make_bare_repo
from tests.harness.lifecycle import GITLAB_HOST, LocalPlatform, make_model_repo
from tests.harness.mlflowserver import start_mlflow
from tests.harness.package import build_wheel, clean_env, copy_repository, product_venv
from tests.harness.processes import stop_all
from tests.harness.s3server import start_seaweedfs

NAME = "jobs"
PROJECT = "bench/overhead"
BRANCH = "feature/overhead"
JOBS = ("validate", "gate", "resolve", "deploy-batch", "deploy-online", "report")
OTHER_BRANCHES = 1000
NETWAIT = Path(__file__).resolve().parent / "netwait"


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


def add_other_runs(database: Path, runs: int) -> None:
    """`runs` FINISHED, gated runs of other branches in every experiment the branch trained in."""
    from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
    from sqlalchemy import create_engine, insert, select

    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        experiments = connection.execute(
            select(SqlRun.experiment_id)
            .join(SqlTag, SqlTag.run_uuid == SqlRun.run_uuid)
            .where(SqlTag.key == TAG_BRANCH, SqlTag.value == BRANCH)
            .distinct()
        ).scalars()
        for experiment_id in list(experiments):
            run_rows, tag_rows = [], []
            for number in range(runs):
                run_id = uuid.uuid4().hex
                branch = f"feature/other-{number % OTHER_BRANCHES}"
                run_rows.append(
                    {
                        "run_uuid": run_id, "name": f"other-{number}", "source_type": "LOCAL",
                        "source_name": "", "entry_point_name": "", "user_id": "bench",
                        "status": "FINISHED", "start_time": 1_700_000_000_000 + number,
                        "end_time": 1_700_000_000_500 + number, "source_version": "",
                        "lifecycle_stage": "active", "artifact_uri": f"s3://bench/{run_id}",
                        "experiment_id": experiment_id,
                    }
                )  # fmt: skip
                tags = {TAG_BRANCH: branch, TAG_ENVIRONMENT: branch, TAG_GATE: GATE_PASSED}
                tag_rows += [{"key": k, "value": v, "run_uuid": run_id} for k, v in tags.items()]
            connection.execute(insert(SqlRun), run_rows)
            connection.execute(insert(SqlTag), tag_rows)


@dataclass(frozen=True)
class NetworkWait:
    """What `netwait/sitecustomize.py` measured in one run of a job."""

    seconds: float
    http_requests: int
    git_processes: int


def network_wait(modelci: str, job: str, repo: Path, env: dict[str, str]) -> NetworkWait:
    """One more run of `job`, adding up how long it waits on the network calls it makes."""
    with tempfile.TemporaryDirectory(prefix="modelci-bench-netwait-") as tmp:
        report = Path(tmp) / "netwait.json"
        traced = {**env, "PYTHONPATH": str(NETWAIT), "MODELCI_BENCH_NETWAIT": str(report)}
        run_process([modelci, job], repo, traced)
        waits = json.loads(report.read_text())
    return NetworkWait(
        waits["http_seconds"] + waits["git_seconds"], waits["http_requests"], waits["git_processes"]
    )


def above(samples: list[float], floor: list[float]) -> float:
    return statistics.median(samples) - statistics.median(floor)


def job_figure(
    job: str, seconds: list[float], floor: list[float], waits: list[NetworkWait]
) -> Figure:
    calls = waits[0]
    wait = statistics.median(w.seconds for w in waits)
    note = (
        f"{above(seconds, floor):.2f} s above the floor; floor: python start + {wait:.3f} s "
        f"waiting on {calls.http_requests} HTTP requests, {calls.git_processes} git remote calls"
    )
    return Figure(NAME, job, "s", seconds, floor, note)


def figures(quick: bool = False) -> list[Figure]:
    repeat = 1 if quick else 5
    other_runs = 200 if quick else 20_000
    with tempfile.TemporaryDirectory(prefix="modelci-bench-jobs-") as tmp:
        base = Path(tmp)
        venv = product_venv(build_wheel(copy_repository(base / "src"), base / "wheel"))
        s3 = start_seaweedfs(base / "s3")
        try:
            mlflow = start_mlflow(base / "mlflow", s3)
            platform = LocalPlatform(
                s3, mlflow, make_bare_repo(base / "dags.git"), make_bare_repo(base / "gitops.git")
            )
            repo = make_model_repo(base / "model", project=PROJECT, branch=BRANCH)
            env = job_env(venv, platform, repo)
            modelci = str(venv / "bin" / "modelci")
            train = run_process([modelci, "train"], repo, env)  # builds or finds the model's env
            python = [str(venv / "bin" / "python"), "-c", "pass"]
            floor = [run_process(python, repo, env) for _ in range(repeat)]
            runs = {
                job: [run_process([modelci, job], repo, env) for _ in range(repeat)] for job in JOBS
            }
            waits = {
                job: [network_wait(modelci, job, repo, env) for _ in range(repeat)] for job in JOBS
            }
            (database,) = (base / "mlflow").glob("attempt*/mlflow.db")
            add_other_runs(database, other_runs)
            crowded = [run_process([modelci, "resolve"], repo, env) for _ in range(repeat)]
            stop = run_process([modelci, "stop"], repo, env)
        finally:
            stop_all()
    floor_seconds = [f.seconds for f in floor]
    floor_mb = [f.peak_mb for f in floor]
    result = [Figure(NAME, "python start", "s", floor_seconds)]
    floors = {
        job: [start + wait.seconds for start, wait in zip(floor_seconds, waits[job], strict=True)]
        for job in JOBS
    }
    result += [
        job_figure(job, [f.seconds for f in runs[job]], floors[job], waits[job]) for job in JOBS
    ]
    push = [sum(runs[job][n].seconds for job in JOBS) for n in range(repeat)]
    push_floor = [sum(floors[job][n] for job in JOBS) for n in range(repeat)]
    result.append(
        Figure(
            NAME, f"push: {len(JOBS)} jobs summed", "s", push, push_floor,
            f"{above(push, push_floor):.2f} s above the floor; floor: the six jobs' floors",
        )
    )  # fmt: skip
    result.append(
        Figure(
            NAME, f"resolve among {other_runs:,} runs", "s", [f.seconds for f in crowded],
            [f.seconds for f in runs["resolve"]], f"floor: resolve among the branch's {1} run",
        )
    )  # fmt: skip
    memory = {"train": [train], **runs, "stop": [stop]}
    result += [
        Figure(NAME, f"peak memory {command}", "MB", [f.peak_mb for f in finished], floor_mb)
        for command, finished in memory.items()
    ]
    return result


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
