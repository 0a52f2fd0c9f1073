"""What does the fleet page cost at the fleet's size?

A real MLflow server (SQLite) holds 100 registered models in 20 projects, 5 versions each with
both stands' aliases and audit tags, and 365 days of daily monitoring runs per model (PSI of
4 features, 5 data checks, a ground-truth metric, a retraining decision); a real S3
(SeaweedFS) holds the scratch objects of 1,000 branch environments and the projects'
environment archives; two local bare repos hold the environments' DAG files and values
(`git fast-import`, one commit); the fake GitLab API (tests/integration/fake_gitlab.py) lists
each project's branches (one in ten is gone) and environments. The MLflow state is written
straight into the server's database (the REST API would take longer than the benchmark).

A process of its own then runs `modelci fleet --platform --days 365`: its wall time, its peak
resident memory, the requests it made to each service and the size of the site are the
figures. The floor is the same command for one project's page and a week of monitoring.

Run: .venv/bin/python benchmarks/fleet.py [--quick]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from common import Figure, Finished, print_table, run_process

from modelci.config.naming import feature_environment, names_for, project_slug_of
from tests.harness.mlflowserver import start_mlflow
from tests.harness.processes import stop_all
from tests.harness.s3server import start_seaweedfs
from tests.integration.fake_gitlab import running

NAME = "fleet"
TOKEN = "glpat-fleet-benchmark"
MODELS_PER_PROJECT = 5
VERSIONS = 5
FEATURES = ("tenure", "charges", "calls", "late")
STANDS = ("staging", "production")


def figures(quick: bool = False) -> list[Figure]:
    models, environments, days = (4, 20, 14) if quick else (100, 1000, 365)
    projects = [f"bench/team-{n:02d}" for n in range(max(1, models // MODELS_PER_PROJECT))]
    with tempfile.TemporaryDirectory(prefix="modelci-bench-fleet-") as tmp:
        base = Path(tmp)
        s3 = start_seaweedfs(base / "s3")
        try:
            mlflow = start_mlflow(base / "mlflow", s3)
            (database,) = (base / "mlflow").glob("attempt*/mlflow.db")
            now = datetime.now(UTC)
            fill_mlflow(database, projects, days, now)
            scratch = f"s3://{s3.bucket}/modelci-scratch"
            branches = fill_s3_and_repos(base, s3, scratch, projects, environments)
            with running(TOKEN) as gitlab:
                gitlab.project_branches = {
                    project: ["main", *(b for i, b in enumerate(names) if i % 10)]
                    for project, names in branches.items()
                }
                gitlab.committed = {
                    b: now.isoformat() for names in branches.values() for b in names
                }
                env = {
                    **{
                        k: v
                        for k, v in os.environ.items()
                        if not k.startswith(("MLFLOW_", "AWS_", "CI_"))
                    },
                    **mlflow.env,
                    "AWS_ACCESS_KEY_ID": s3.access_key,
                    "AWS_SECRET_ACCESS_KEY": s3.secret_key,
                    "AWS_DEFAULT_REGION": s3.region,
                    "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url,
                    "MODELCI_SCRATCH_URI": scratch,
                    "MODELCI_DAG_REPO_URL": (base / "dags.git").as_uri(),
                    "MODELCI_GITOPS_REPO_URL": (base / "gitops.git").as_uri(),
                    "CI_SERVER_URL": gitlab.url,
                    "MODELCI_GITLAB_TOKEN": TOKEN,
                }
                modelci = [sys.executable, "-m", "modelci", "fleet"]
                fleet = run_process(
                    [*modelci, "--platform", "--days", str(days), "--out", str(base / "site")],
                    base,
                    env,
                )
                floor = run_process(
                    [*modelci, "--project", projects[0], "--days", "7", "--out", str(base / "one")],
                    base,
                    env,
                )
            size = sum(p.stat().st_size for p in (base / "site").iterdir())
            pages = len(list((base / "site").iterdir()))
        finally:
            stop_all()
    label = f"{models} models, {environments:,} envs, {days} days"
    phases = re.search(r"read in ([\d.]+) s, drawn in ([\d.]+) s", fleet.output)
    note = (
        f"{requests(fleet)}; read {phases[1]} s, drawn {phases[2]} s; site "
        f"{size / (1 << 20):.1f} MB in {pages} pages; floor: one project's page, a week"
    )
    return [
        Figure(NAME, f"build, {label}", "s", [fleet.seconds], [floor.seconds], note),
        Figure(NAME, f"peak memory, {label}", "MB", [fleet.peak_mb], [floor.peak_mb]),
    ]


def requests(finished: Finished) -> str:
    """'requests MLflow 40, S3 2, ...' from the command's summary lines."""
    found = re.findall(r"^\s{2}(\S.*?)\s+(\d+) requests", finished.output, re.MULTILINE)
    problems = [line for line in finished.output.splitlines() if "NOT READ" in line]
    if problems:
        raise SystemExit(f"the fleet page could not read a source: {problems}")
    return "requests " + ", ".join(f"{name} {count}" for name, count in found)


def fill_mlflow(database: Path, projects: list[str], days: int, now: datetime) -> None:
    """Experiments, runs, registered versions with aliases and audit tags, and the daily
    monitoring runs, straight into the server's database."""
    from mlflow.store.model_registry.dbmodels import models as registry
    from mlflow.store.tracking.dbmodels import models as tracking
    from sqlalchemy import create_engine, insert

    rows: dict[object, list[dict]] = {}

    def add(table: object, **values: object) -> None:
        rows.setdefault(table, []).append(values)

    stamp = int(now.timestamp() * 1000)
    experiment_id = 100
    for project in projects:
        for index in range(MODELS_PER_PROJECT):
            model = f"model-{index}"
            names = names_for(project, "main", model)
            for name in (names.experiment, f"{names.experiment}/monitoring"):
                experiment_id += 1
                add(
                    tracking.SqlExperiment,
                    experiment_id=experiment_id,
                    name=name,
                    artifact_location=f"s3://bench/{experiment_id}",
                    lifecycle_stage="active",
                    creation_time=stamp,
                    last_update_time=stamp,
                )
            training, watching = experiment_id - 1, experiment_id
            add(
                registry.SqlRegisteredModel,
                name=names.registered_model,
                creation_time=stamp,
                last_updated_time=stamp,
            )
            run_ids = []
            for version in range(1, VERSIONS + 1):
                run_id = uuid.uuid4().hex
                run_ids.append(run_id)
                _run(
                    add,
                    tracking,
                    run_id,
                    training,
                    stamp - version * 86_400_000,
                    {"modelci.project": project, "modelci.model": model, "modelci.gate": "passed"},
                    {"accuracy": 0.8 + version / 100},
                )
                add(
                    registry.SqlModelVersion,
                    name=names.registered_model,
                    version=version,
                    creation_time=stamp,
                    last_updated_time=stamp,
                    current_stage="None",
                    source=f"models:/m-{run_id}",
                    run_id=run_id,
                    status="READY",
                )
            for stand, version in zip(STANDS, (VERSIONS, VERSIONS - 1), strict=True):
                add(
                    registry.SqlRegisteredModelAlias,
                    name=names.registered_model,
                    alias=stand,
                    version=version,
                )
                for field, value in (
                    ("action", "promote"),
                    ("by", "lead"),
                    ("at", now.isoformat(timespec="seconds")),
                    ("previous_version", str(version - 1)),
                ):
                    add(
                        registry.SqlModelVersionTag,
                        name=names.registered_model,
                        version=version,
                        key=f"modelci.stand.{stand}.{field}",
                        value=value,
                    )
            for day in range(days):
                drift = day % 30 == 29
                metrics = {f"psi.{f}": (0.4 if drift and f == "tenure" else 0.02) for f in FEATURES}
                metrics |= {f"null_share.{f}": 0.0 for f in FEATURES} | {"out_of_range.calls": 0.0}
                metrics |= {"accuracy": 0.75 if drift else 0.86, "rows": 5000.0}
                tags = {
                    "modelci.kind": "monitoring",
                    "modelci.project": project,
                    "modelci.model": model,
                    "modelci.environment": "production",
                    "modelci.monitors_run": run_ids[-2],
                    "modelci.monitor": "failed" if drift else "passed",
                    "modelci.retrain.decision": "triggered" if drift else "none",
                    "modelci.retrain.reason": "drift" if drift else "every check passed",
                }
                start = stamp - (days - day) * 86_400_000 + 3_600_000
                _run(add, tracking, uuid.uuid4().hex, watching, start, tags, metrics)
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        for table, values in rows.items():
            for chunk in range(0, len(values), 20_000):
                connection.execute(insert(table), values[chunk : chunk + 20_000])


def _run(
    add, tracking, run_id: str, experiment: int, start: int, tags: dict, metrics: dict
) -> None:
    add(
        tracking.SqlRun,
        run_uuid=run_id,
        name=run_id[:8],
        source_type="LOCAL",
        source_name="",
        entry_point_name="",
        user_id="bench",
        status="FINISHED",
        start_time=start,
        end_time=start + 1000,
        source_version="",
        lifecycle_stage="active",
        artifact_uri=f"s3://bench/{run_id}",
        experiment_id=experiment,
    )
    for key, value in tags.items():
        add(tracking.SqlTag, key=key, value=value, run_uuid=run_id)
    for key, value in metrics.items():
        for table in (tracking.SqlMetric, tracking.SqlLatestMetric):
            add(table, key=key, value=value, timestamp=start, step=0, is_nan=False, run_uuid=run_id)


def fill_s3_and_repos(
    base: Path, s3, scratch: str, projects: list[str], environments: int
) -> dict[str, list[str]]:
    """Each environment's scratch objects, DAG file and values; the branches, by project."""
    branches: dict[str, list[str]] = {project: [] for project in projects}
    keys, dag_files, values_files = [], [], []
    bucket, _, prefix = scratch.removeprefix("s3://").partition("/")
    for number in range(environments):
        project = projects[number % len(projects)]
        branch = f"feature/work-{number}"
        branches[project].append(branch)
        slug, environment = project_slug_of(project), feature_environment(branch)
        keys += [
            f"{prefix}/branches/{slug}/{environment}/{name}"
            for name in ("code.tar.gz", "env-archives.txt")
        ]
        dag_files.append(f"dags/{slug}/{environment}/model-0__inference.py")
        values_files.append(f"environments/{slug}/{environment}/model-0/values.yaml")
    for project in projects:
        keys.append(f"{prefix}/envs/{project_slug_of(project)}/py311-0123abcd/environment.tar.gz")
    client = s3.client()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"x" * 2048), keys)
        )
    for name, files in (("dags.git", dag_files), ("gitops.git", values_files)):
        _repo(base / name, files)
    return branches


def _repo(path: Path, files: list[str]) -> None:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    lines = ["commit refs/heads/main", "committer bench <b@example.com> 0 +0000", "data 5", "seed"]
    for file in files:
        lines += [f"M 100644 inline {file}", "data 2", "x"]
    stream = ("\n".join(lines) + "\n").encode()
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=stream, check=True)
    # As GitLab serves it: a fetch may leave out the blobs (the page reads the trees alone).
    subprocess.run(["git", "-C", str(path), "config", "uploadpack.allowFilter", "true"], check=True)


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
