"""What does one generated DAG cost Airflow's parser, against dag-factory in the same Airflow?

Airflow parses every file of a DAG bundle again and again, so a DAG's parse time is paid by
the platform forever. This writes three folders of N DAG files each and parses each folder
with Airflow 3's DagBag (.venv-airflow), in a fresh process per repetition; the figure is
Airflow's own per-file parse duration (`dagbag_stats`), averaged over the folder. The modules
the files import are imported first, as the dag-processor's `parsing_pre_import_modules` does,
and one DAG is parsed before the timed folder, so the figure is the DAG's own cost, not what
the first file of a process pays once:

  modelci      the example model's inference DAG as deploy-batch renders it, N environments;
  dag-factory  the same DAG (one KubernetesPodOperator with the same image, command,
               environment, resources and labels) as a dag-factory YAML file and the loader
               file dag-factory's documentation shows (`load_yaml_dags` of that YAML);
  floor        a DAG with one EmptyOperator, the least a DAG file costs.

dag-factory is installed once, without its dependencies (Airflow's own venv has them), into
.cache/bench/dag-factory, from PyPI; it runs with its telemetry off.

Run: .venv/bin/python benchmarks/dag_parse.py [--quick]
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, Figure, print_table
from ruamel.yaml import YAML
from shared_repo_commit import load_workload

from modelci.render.dags import container_resources

NAME = "dag-parse"
DAG_FACTORY = "dag-factory==1.1.0"
DAG_FACTORY_DIR = ROOT / ".cache" / "bench" / "dag-factory"
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
import airflow.providers.cncf.kubernetes.operators.pod, airflow.providers.standard.operators.empty
import dagfactory, kubernetes.client.models
DagBag(dag_folder=sys.argv[2])  # warm-up: what the first DAG of a process pays once
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
seconds = [stat.duration.total_seconds() for stat in bag.dagbag_stats]
print(json.dumps({"seconds": seconds, "dags": len(bag.dags)}))
"""
FLOOR_DAG = """from datetime import datetime, timezone

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    EmptyOperator(task_id="noop")
"""
DAG_FACTORY_LOADER = """# The following import is here so Airflow parses this file
# from airflow import DAG
from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(), config_filepath={path!r})
"""


def ensure_dag_factory() -> Path:
    if not (DAG_FACTORY_DIR / "dagfactory").is_dir():
        subprocess.run(
            [str(AIRFLOW_PYTHON), "-m", "pip", "install", "-q", "--no-deps",
             "--no-warn-script-location", "--target", str(DAG_FACTORY_DIR), DAG_FACTORY],
            check=True,
        )  # fmt: skip
    return DAG_FACTORY_DIR


def write_folders(base: Path, count: int) -> dict[str, Path]:
    workload = load_workload()
    folders = {label: base / label for label in ("modelci", "dag-factory", "floor")}
    for folder in folders.values():
        folder.mkdir()
    (base / "warm_up.py").write_text(FLOOR_DAG.format(dag_id="warm_up"))
    for number in range(count):
        names = workload.names(f"feature/parse-{number}")
        dag_id = f"parse_{number}"
        source = workload.dag_source(names)
        (folders["modelci"] / f"{dag_id}.py").write_text(source)
        (folders["floor"] / f"{dag_id}.py").write_text(FLOOR_DAG.format(dag_id=dag_id))
        config = folders["dag-factory"] / f"{dag_id}.yml"
        df_config = dag_factory_config(f"{dag_id}_df", workload.dag, names.namespace, source)
        YAML().dump(df_config, config)
        loader = folders["dag-factory"] / f"{dag_id}.py"
        loader.write_text(DAG_FACTORY_LOADER.format(path=str(config)))
    return folders


def constants(source: str) -> dict[str, object]:
    """The literal module-level constants of a generated DAG file (IMAGE, COMMAND, ...)."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def k8s(kind: str, **fields: object) -> dict[str, object]:
    """A Kubernetes client object in dag-factory's YAML (its `__type__` key)."""
    return {"__type__": f"kubernetes.client.models.{kind}", **fields}


def dag_factory_config(dag_id: str, dag, namespace: str, source: str) -> dict:
    """The DAG of `source` as dag-factory YAML: one KubernetesPodOperator with the same fields."""
    values = constants(source)
    requests, limits = container_resources(dag.resources)
    secret = k8s("V1SecretEnvSource", name=values["S3_SECRET"])
    task = {
        "operator": "airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator",
        "name": dag_id.replace("_", "-"),
        "namespace": namespace,
        "image": values["IMAGE"],
        "cmds": values["POD_RUN"],
        "arguments": values["COMMAND"],
        "env_vars": {**values["ENV_VARS"], **values["RUN_VALUES"]},
        "env_from": [k8s("V1EnvFromSource", secret_ref=secret)],
        "container_resources": k8s("V1ResourceRequirements", requests=requests, limits=limits),
        "labels": values["LABELS"],
        "retries": dag.retries,
    }
    return {
        dag_id: {
            "default_args": {"start_date": "2024-01-01"},
            "schedule": dag.schedule,
            "catchup": False,
            "max_active_runs": 1,
            "is_paused_upon_creation": False,
            "tasks": {dag.kind: task},
        }
    }


def parse_seconds(folder: Path, dag_factory: Path, count: int) -> list[float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(dag_factory),
        "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
    }
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", PARSE, str(folder), str(folder.parent / "warm_up.py")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"DagBag parse of {folder} failed:\n{result.stderr[-3000:]}")
    parsed = json.loads(result.stdout.splitlines()[-1])
    if parsed["dags"] != count:
        raise SystemExit(f"{folder}: {parsed['dags']} DAGs parsed, {count} written")
    return parsed["seconds"]


def figures(quick: bool = False) -> list[Figure]:
    count, repeat = (3, 1) if quick else (50, 3)
    dag_factory = ensure_dag_factory()
    per_dag: dict[str, list[float]] = {"modelci": [], "dag-factory": [], "floor": []}
    with tempfile.TemporaryDirectory(prefix="modelci-bench-parse-") as tmp:
        folders = write_folders(Path(tmp), count)
        for _ in range(repeat):
            for label, folder in folders.items():
                per_dag[label].append(1000 * sum(parse_seconds(folder, dag_factory, count)) / count)
    floor = per_dag["floor"]
    note = f"{count} DAG files per folder, Airflow's per-file parse time"
    return [
        Figure(NAME, "per DAG, modelci", "ms", per_dag["modelci"], floor, note),
        Figure(NAME, "per DAG, dag-factory", "ms", per_dag["dag-factory"], floor, DAG_FACTORY),
        Figure(NAME, "per DAG, one EmptyOperator", "ms", floor),
    ]


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
