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

# Two GitDagBundles on one DAG repo, as the README sets them up: feature environments' DAGs
# from the branch every pipeline may push to, stands' DAGs from the protected stands branch.
BRANCHES_BUNDLE, STANDS_BUNDLE = "modelci_branches", "modelci_stands"
BUNDLES = {BRANCHES_BUNDLE: "main", STANDS_BUNDLE: "stands"}
GIT_CONN_ID = "git_local"
COMMAND_TIMEOUT = 180

# Runs inside .venv-airflow: argv[1] is the folder to parse, argv[2] the JSON file to write.
# Each task is rendered as a task run renders it (render_template_fields with a run context),
# then turned into the pod Kubernetes would get (build_pod_request_obj), or for a Spark task the
# SparkApplication it would submit (template_body). The context holds
# Variables, a Connection and a template file that must never reach the pod: any of their
# markers in the output means Airflow evaluated a string it was given.
DAGBAG_SCRIPT = """
import json, sys, types
import pendulum
from airflow.dag_processing.dagbag import DagBag

LEAK = "LEAKED-VIA-JINJA"
bag = DagBag(dag_folder=sys.argv[1])
found = {"import_errors": dict(bag.import_errors), "dags": {}}
start = pendulum.datetime(2024, 5, 6, tz="UTC")
for dag_id, dag in bag.dags.items():
    tasks = {}
    for task in dag.tasks:
        context = {
            "dag": dag,
            "run_id": "scheduled__2024-05-07T00:00:00+00:00",
            "ti": types.SimpleNamespace(
                dag_id=dag_id, task_id=task.task_id, map_index=-1, try_number=1
            ),
            "logical_date": start.add(days=1),
            "ds": "2024-05-07",
            "ts": "2024-05-07T00:00:00+00:00",
            "data_interval_start": start,
            "data_interval_end": start.add(days=1),
            "var": {"value": types.SimpleNamespace(secret=LEAK), "json": {}},
            "conn": types.SimpleNamespace(x=types.SimpleNamespace(password=LEAK)),
            "params": {},
            "macros": types.SimpleNamespace(),
        }
        task.render_template_fields(context)
        if type(task).__name__ == "SparkKubernetesOperator":
            tasks[task.task_id] = {
                "operator": type(task).__name__,
                "namespace": task.namespace,
                "spark_application": task.template_body["spark"],
                "retries": task.retries,
            }
            continue
        pod = task.build_pod_request_obj(context, dry_run=True)
        container = pod.spec.containers[0]
        tasks[task.task_id] = {
            "operator": type(task).__name__,
            "image": container.image,
            "namespace": pod.metadata.namespace,
            "cmds": container.command,
            "arguments": container.args,
            "env_vars": {var.name: var.value for var in container.env},
            "env_from": [source.secret_ref.name for source in container.env_from],
            "requests": container.resources.requests,
            "limits": container.resources.limits,
            "labels": {k: v for k, v in pod.metadata.labels.items() if k.startswith("modelci")},
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

    def __init__(
        self,
        root: Path,
        bare_repo: Path,
        *,
        refresh_interval: int | None = None,
        bundles: dict[str, str] | None = None,
    ) -> None:
        """`refresh_interval`: the bundles' (seconds; default: Airflow's, 300). `bundles`:
        name -> branch of the DAG repo (default `BUNDLES`, both; one for an Airflow of its own)."""
        self.root = root
        home = root / "home"
        home.mkdir(parents=True)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        bundles = [
            {
                "name": name,
                "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
                "kwargs": {
                    "git_conn_id": GIT_CONN_ID,
                    "tracking_ref": ref,
                    "subdir": "dags",
                    **({} if refresh_interval is None else {"refresh_interval": refresh_interval}),
                },
            }
            for name, ref in (bundles or BUNDLES).items()
        ]
        self.env = {
            **inherited,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag_bundles"),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
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

    def run(self, label: str, argv: list[str], *, ok_codes: tuple[int, ...] = (0,)) -> str:
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
        assert result.returncode in ok_codes, (
            f"{label} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        return result.stdout

    def airflow(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> str:
        return self.run("airflow " + " ".join(args), [str(AIRFLOW_BIN), *args], ok_codes=ok_codes)

    def close(self) -> None:
        if self._migrate.poll() is None:
            self._migrate.terminate()
            self._migrate.wait(timeout=30)


def json_output(stdout: str) -> Any:
    """The JSON document in a CLI's stdout; Airflow logs its warnings there too."""
    return json.loads(next(line for line in reversed(stdout.splitlines()) if line[:1] in "[{"))
