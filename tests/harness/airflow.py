"""A private Airflow 3 (from .venv-airflow) for tests: a sqlite AIRFLOW_HOME whose database is
migrated in the background, a GitDagBundle over a bare repo, and a DagBag parse of a folder."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.harness.tools import AIRFLOW_BIN, AIRFLOW_PYTHON

BUNDLE = "model_dags"
GIT_CONN_ID = "git_local"
COMMAND_TIMEOUT = 180

# Runs inside .venv-airflow: argv[1] is the folder to parse, argv[2] the JSON file to write.
DAGBAG_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

def env_dict(env_vars):
    if isinstance(env_vars, dict):
        return env_vars
    return {var.name: var.value for var in env_vars}

bag = DagBag(dag_folder=sys.argv[1])
found = {"import_errors": dict(bag.import_errors), "dags": {}}
for dag_id, dag in bag.dags.items():
    tasks = {}
    for task in dag.tasks:
        tasks[task.task_id] = {
            "operator": type(task).__name__,
            "image": task.image,
            "namespace": task.namespace,
            "cmds": task.cmds,
            "arguments": task.arguments,
            "env_vars": env_dict(task.env_vars),
            "env_from": [source.secret_ref.name for source in task.env_from],
            "requests": task.container_resources.requests,
            "limits": task.container_resources.limits,
            "retries": task.retries,
        }
    found["dags"][dag_id] = {
        "fileloc": dag.fileloc,
        "schedule": dag.schedule,
        "catchup": dag.catchup,
        "is_paused_upon_creation": dag.is_paused_upon_creation,
        "tags": sorted(dag.tags),
        "tasks": tasks,
    }
with open(sys.argv[2], "w") as out:
    json.dump(found, out)
"""


def parse_dag_folder(folder: Path, output: Path) -> dict[str, Any]:
    """Import every DAG file under `folder` with Airflow's DagBag; import errors and DAG facts."""
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", DAGBAG_SCRIPT, str(folder), str(output)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"DagBag parse failed:\n{result.stderr[-3000:]}"
    return json.loads(output.read_text())


class AirflowHome:
    """A private AIRFLOW_HOME whose sqlite database is migrated in the background."""

    def __init__(self, root: Path, bare_repo: Path) -> None:
        self.root = root
        home = root / "home"
        home.mkdir(parents=True)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        bundle = {
            "name": BUNDLE,
            "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
            "kwargs": {"git_conn_id": GIT_CONN_ID, "tracking_ref": "main", "subdir": "dags"},
        }
        self.env = {
            **inherited,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag_bundles"),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([bundle]),
            # A connection from the environment: `dags reserialize` does not see one in the db.
            f"AIRFLOW_CONN_{GIT_CONN_ID.upper()}": json.dumps(
                {"conn_type": "git", "host": bare_repo.as_uri()}
            ),
        }
        self.timings: dict[str, float] = {}
        self._migrate_log = root / "db-migrate.log"
        with self._migrate_log.open("w") as log:
            self._started = time.monotonic()
            self._migrate = subprocess.Popen(
                [str(AIRFLOW_BIN), "db", "migrate"],
                env=self.env,
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_for_database(self) -> None:
        code = self._migrate.wait(timeout=COMMAND_TIMEOUT)
        self.timings.setdefault("airflow db migrate", time.monotonic() - self._started)
        assert code == 0, f"airflow db migrate failed:\n{self._migrate_log.read_text()[-4000:]}"

    def run(self, label: str, argv: list[str]) -> str:
        start = time.monotonic()
        result = subprocess.run(
            argv,
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        self.timings[label] = time.monotonic() - start
        assert result.returncode == 0, (
            f"{label} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        return result.stdout

    def airflow(self, *args: str) -> str:
        return self.run("airflow " + " ".join(args), [str(AIRFLOW_BIN), *args])

    def close(self) -> None:
        if self._migrate.poll() is None:
            self._migrate.terminate()
            self._migrate.wait(timeout=30)


def json_output(stdout: str) -> Any:
    """The JSON document in a CLI's stdout; Airflow logs its warnings there too."""
    return json.loads(next(line for line in reversed(stdout.splitlines()) if line[:1] in "[{"))
