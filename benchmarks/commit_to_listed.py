"""From a deploy's commit to the DAG in Airflow: how long, with Airflow's defaults and with the
settings the README recommends?

Starts a real `airflow dag-processor` (Airflow 3, .venv-airflow) on the two Git DAG bundles the
README sets up, over a local bare DAG repo, waits until it has parsed the repo's first DAG, then
commits a new generated DAG the way `deploy-batch` does (modelci's RemoteRepo, one commit) and
polls Airflow's database until the DAG is there: the seconds from the commit to the DAG being
listed, per setting. No floor: the figure is bounded by the bundle's refresh interval, which
the setting chooses.

  default      the bundles' refresh_interval left at Airflow's [dag_processor] default (300 s)
  recommended  refresh_interval 10 s on the bundles: a `git fetch` of one branch every 10 s is
               cheap, and a new DAG file is parsed as soon as the bundle has it

Run: .venv/bin/python benchmarks/commit_to_listed.py [--quick]
The default setting takes up to five minutes per repetition; --quick leaves it out.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from common import Figure, print_table
from shared_repo_commit import load_workload

from modelci.systems.gitrepo import Changes, RemoteRepo
from tests.harness.airflow import AirflowHome
from tests.harness.gitremotes import make_bare_repo
from tests.harness.processes import ServerProcess, stop_all
from tests.harness.tools import AIRFLOW_BIN

NAME = "commit-to-live"
SETTINGS = {"default": None, "recommended": 10}
TIMEOUT_SECONDS = 420.0


def dag_file(branch: str) -> tuple[str, bytes]:
    """A DAG file as deploy-batch writes it, for `branch`'s environment."""
    workload = load_workload()
    names = workload.names(branch, "ml/bench")
    return names.dag_path(workload.dag.kind), workload.dag_source(names).encode()


def listed(database: Path, dag_id: str) -> bool:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            row = connection.execute("SELECT 1 FROM dag WHERE dag_id = ?", (dag_id,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


def dag_id_of(path: str) -> str:
    _, project, environment, rest = path.split("/", 3)
    return f"{project}__{environment}__{rest.removesuffix('.py')}"


def wait_listed(database: Path, dag_id: str, since: float) -> float:
    while time.monotonic() - since < TIMEOUT_SECONDS:
        if listed(database, dag_id):
            return time.monotonic() - since
        time.sleep(0.2)
    raise SystemExit(f"{dag_id} was not listed within {TIMEOUT_SECONDS:.0f} s")


def measure(base: Path, refresh_interval: int | None, number: int) -> float:
    seed_path, seed = dag_file(f"feature/seed-{number}")
    bare = make_bare_repo(base / "dags.git", {seed_path: seed.decode()})
    home = AirflowHome(base / "airflow", bare, refresh_interval=refresh_interval)
    home.wait_for_database()
    database = Path(home.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))
    processor = ServerProcess(
        "airflow dag-processor",
        [AIRFLOW_BIN, "dag-processor"],
        base / "dag-processor.log",
        env=home.env,
        cwd=base,
    )
    try:
        wait_listed(database, dag_id_of(seed_path), time.monotonic())
        path, content = dag_file(f"feature/new-{number}")
        RemoteRepo(str(bare), "main").apply(
            [path.rsplit("/", 1)[0]], lambda _read: Changes(writes={path: content}), "deploy"
        )
        return wait_listed(database, dag_id_of(path), time.monotonic())
    finally:
        processor.stop()
        home.close()


def figures(quick: bool = False) -> list[Figure]:
    repeat = {"recommended": 1} if quick else {"recommended": 3, "default": 3}
    results: dict[str, list[float]] = {name: [] for name in repeat}
    try:
        for name, times in repeat.items():
            for number in range(times):
                with tempfile.TemporaryDirectory(prefix="modelci-bench-listed-") as tmp:
                    results[name].append(measure(Path(tmp), SETTINGS[name], number))
    finally:
        stop_all()
    return [
        Figure(NAME, f"DAG listed, {name} ({SETTINGS[name] or 300} s refresh)", "s", seconds,
               note="Airflow dag-processor on a Git DAG bundle")
        for name, seconds in results.items()
    ]  # fmt: skip


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
