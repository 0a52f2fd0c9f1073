"""Generated DAG files loaded by a real Airflow 3 (the `.venv-airflow` virtualenv).

Airflow lives in its own virtualenv, so it runs as a subprocess: a small script parses a folder
with Airflow's DagBag and prints what it found as JSON, and the `airflow` CLI serializes a
GitDagBundle that tracks a local bare repository, the way the platform's DAG processor does.
One AIRFLOW_HOME (sqlite) serves the whole module.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import git
import pytest

from modelci.config.fields import DAG_KINDS
from modelci.config.macros import env_name
from modelci.config.mlops import load_config
from modelci.config.naming import Names, names_for
from modelci.config.settings import Pipeline
from modelci.config.types import Batch, Dag, Model, Resources
from modelci.render.dags import MonitorTarget, render_dag
from tests.harness.airflow import (
    BRANCHES_BUNDLE,
    BUNDLES,
    DAGBAG_SCRIPT,
    STANDS_BUNDLE,
    AirflowHome,
    json_output,
)
from tests.harness.gitremotes import add_branch, make_bare_repo
from tests.harness.tools import AIRFLOW_BIN, AIRFLOW_PYTHON, ROOT, require

PROJECT = "ml/churn"
BRANCHES = [
    "feature/Add-XGB",
    "fix/ünïcode_and.dots",
    "JIRA-42",
    'it\'s-"quoted"-{{ ds }}',
    "very/" + "long-branch-name-" * 6,
]
STAND = "production"
IMAGE = "registry.example.com/ml/churn:1.4"
S3_SECRET = "modelci-s3"
TRACKING_URI = "http://mlflow.mlops.svc:5000"

EXAMPLE_CONFIG = ROOT / "examples" / "churn" / "mlops.yaml"
# Strings Airflow would evaluate if they reached its Jinja: Variables, Connections, any
# expression, and a name ending like a template file (which Airflow would try to load).
HOSTILE = [
    "{{ var.value.secret }}",
    "{{ conn.x.password }}",
    "{% for c in [1] %}{{ 7 * 7 }}{% endfor %}",
    "{# comment #}",
    "config.yaml",
    "data.json",
    "${ds}",
]
HOSTILE_BRANCH = "feature/{{ var.value.secret }}"
# What the run context the harness renders with makes of the allowlisted run values.
RUN_VALUES = {
    env_name("ds"): "2024-05-07",
    env_name("ts"): "2024-05-07T00:00:00+00:00",
    env_name("data_interval_start"): "2024-05-06T00:00:00+00:00",
    env_name("data_interval_end"): "2024-05-07T00:00:00+00:00",
    env_name("run_id"): "scheduled__2024-05-07T00:00:00+00:00",
}


def example_model() -> Model:
    """The example's model, plus a training DAG with a GPU and no schedule if it has none, so
    that the DAGs cover every kind, no schedule, and a GPU."""
    model = load_config(EXAMPLE_CONFIG).models[0]
    dags = [dag for dag in model.batch.dags if dag.kind != "training"]
    dags.append(
        Dag(
            kind="training",
            entrypoint=model.train.entrypoint,
            args=model.train.args,
            schedule=None,
            resources=Resources(cpu="2", memory="4Gi", gpu=1),
        )
    )
    assert sorted(dag.kind for dag in dags) == sorted(DAG_KINDS), EXAMPLE_CONFIG
    return replace(model, batch=Batch(dags=tuple(dags)))


@dataclass(frozen=True)
class Rendered:
    names: Names
    dag: Dag
    source: str
    code_uri: str
    model_uri: str
    run_id: str
    image: str = IMAGE
    tracking_uri: str = TRACKING_URI
    environment_uri: str = ""
    data_uri: str = ""


MONITOR = MonitorTarget(
    config_file="mlops.yaml",
    gitlab_url="https://gitlab.example.com",
    ref="main",
    trigger_secret="modelci-retrain-trigger",
)


def data_uri(names: Names) -> str:
    return f"s3://mlops/scratch/{names.s3_prefix}data/{names.model}/"


def render_all() -> list[Rendered]:
    model = example_model()
    rendered = []
    targets = [names_for(PROJECT, branch, model.name) for branch in BRANCHES]
    targets.append(names_for(PROJECT, "main", model.name, stand=STAND))
    for number, names in enumerate(targets):
        pipeline = Pipeline(
            project=PROJECT,
            project_url="https://gitlab.example.com/ml/churn",
            branch=names.branch,
            default_branch="main",
            commit=f"{number:040x}",
            pipeline_id=str(100 + number),
            pipeline_url=f"https://gitlab.example.com/ml/churn/-/pipelines/{100 + number}",
            job_url="",
            user="ds",
        )
        code_uri = f"s3://mlops/scratch/{names.s3_prefix}code-{number:012x}.tar.gz"
        model_uri = f"models:/m-{number:08x}"
        run_id = f"{number:032x}"
        # Stands and some branches run in the model's environment archive.
        environment_uri = (
            f"s3://mlops/scratch/envs/py3.11-{number:020x}/environment.tar.gz"
            if names.is_stand or number % 2
            else ""
        )
        for dag in model.batch.dags:
            source = render_dag(
                names=names,
                model=model,
                dag=dag,
                pipeline=pipeline,
                image=IMAGE,
                model_uri=model_uri,
                run_id=run_id,
                code_uri=code_uri,
                s3_secret=S3_SECRET,
                tracking_uri=TRACKING_URI,
                environment_uri=environment_uri,
                data_uri=data_uri(names),
                monitor=MONITOR,
            )
            rendered.append(
                Rendered(
                    names, dag, source, code_uri, model_uri, run_id,
                    environment_uri=environment_uri, data_uri=data_uri(names),
                )
            )  # fmt: skip
    rendered.append(render_hostile(model))
    return rendered


def render_hostile(model: Model) -> Rendered:
    """One DAG in which every string that can come from outside is hostile."""
    names = names_for(PROJECT, HOSTILE_BRANCH, model.name)
    dag = Dag(kind="inference", entrypoint="{{ conn.x.password }}.py", args=tuple(HOSTILE))
    hostile = " ".join(HOSTILE)
    pipeline = Pipeline(
        project=PROJECT,
        project_url="https://gitlab.example.com/ml/churn",
        branch=HOSTILE_BRANCH,
        default_branch="main",
        commit="f" * 40,
        pipeline_id="{{ var.value.secret }}",
        pipeline_url="https://gitlab.example.com/{{ var.value.secret }}",
        job_url="",
        user="{{ conn.x.password }}",
    )
    r = Rendered(
        names=names,
        dag=dag,
        source="",
        code_uri=f"s3://mlops/{hostile}/code.tar.gz",
        model_uri=f"s3://mlops/{hostile}/model",
        run_id="{{ var.value.secret }}",
        image="{{ var.value.secret }}/config.yaml",
        tracking_uri=f"http://mlflow/{hostile}",
    )
    source = render_dag(
        names=names,
        model=replace(model, batch=Batch(dags=(dag,))),
        dag=dag,
        pipeline=pipeline,
        image=r.image,
        model_uri=r.model_uri,
        run_id=r.run_id,
        code_uri=r.code_uri,
        s3_secret=S3_SECRET,
        tracking_uri=r.tracking_uri,
    )
    return replace(r, source=source)


@pytest.fixture(scope="module")
def rendered() -> list[Rendered]:
    return render_all()


@pytest.fixture(scope="module")
def bare_repo(tmp_path_factory: pytest.TempPathFactory, rendered: list[Rendered]) -> Path:
    """The DAG repo: feature environments' DAGs on main, the stand's on the stands branch."""
    files = {r.names.dag_path(r.dag.kind): r.source for r in rendered if not r.names.is_stand}
    bare = make_bare_repo(tmp_path_factory.mktemp("remote") / "dags.git", files)
    stands = {r.names.dag_path(r.dag.kind): r.source for r in rendered if r.names.is_stand}
    add_branch(bare, BUNDLES["modelci_stands"], stands)
    return bare


@pytest.fixture(scope="module")
def airflow_home(
    tmp_path_factory: pytest.TempPathFactory, bare_repo: Path
) -> Iterator[AirflowHome]:
    require(AIRFLOW_BIN)
    require(AIRFLOW_PYTHON)
    home = AirflowHome(tmp_path_factory.mktemp("airflow"), bare_repo)
    yield home
    home.close()
    timings = ", ".join(f"{label}: {seconds:.1f}s" for label, seconds in home.timings.items())
    sys.stderr.write(f"\n[test_airflow timings] {timings}\n")


def expected_command(r: Rendered) -> tuple[list[str], list[str]]:
    """(cmds, arguments): the product's monitoring runs modelci in the image's Python."""
    if r.dag.builtin:
        stand = ["--stand", r.names.environment] if r.names.is_stand else []
        monitor = ["modelci", "monitor", "--config", "mlops.yaml", "--model", r.names.model]
        return ["modelci", "pod-run", "--code", r.code_uri, "--"], [*monitor, *stand]
    env = ["--env", r.environment_uri] if r.environment_uri else []
    return (
        ["modelci", "pod-run", "--code", r.code_uri, *env, "--"],
        ["python", r.dag.entrypoint, *r.dag.args],
    )


def expected_env(r: Rendered) -> dict[str, str]:
    env = {
        "MODEL_URI": r.model_uri,
        "MLFLOW_RUN_ID": r.run_id,
        "MLFLOW_TRACKING_URI": r.tracking_uri,
        "MODELCI_ENVIRONMENT": r.names.environment,
        "MODELCI_MODEL": r.names.model,
        "MODELCI_CODE_URI": r.code_uri,
        **({"MODELCI_ENVIRONMENT_URI": r.environment_uri} if r.environment_uri else {}),
        **({"MODELCI_DATA_URI": r.data_uri} if r.data_uri else {}),
        **RUN_VALUES,
    }
    if r.dag.builtin:
        env |= {
            "MODELCI_GITLAB_URL": MONITOR.gitlab_url,
            "MODELCI_PROJECT": r.names.project,
            "MODELCI_EXPERIMENT": r.names.experiment,
            "MODELCI_RETRAIN_REF": MONITOR.ref,
        }
    if r.dag.kind == "training":  # a run of its own (MLFLOW_RUN_CONTEXT: checked apart)
        served = env.pop("MLFLOW_RUN_ID")
        env |= {"MODELCI_SERVED_RUN_ID": served, "MLFLOW_EXPERIMENT_NAME": r.names.experiment}
    return env


def expected_dag(r: Rendered) -> dict[str, Any]:
    cmds, arguments = expected_command(r)
    return {
        "schedule": r.dag.schedule,
        "catchup": False,
        "is_paused_upon_creation": False,
        "tags": sorted([r.names.project_slug, r.names.environment, r.names.model, r.dag.kind]),
        "tasks": {
            r.dag.kind: {
                "operator": "KubernetesPodOperator",
                "image": r.image,
                "namespace": r.names.namespace,
                "cmds": cmds,
                "arguments": arguments,
                "env_vars": expected_env(r),
                "env_from": [S3_SECRET, *([MONITOR.trigger_secret] if r.dag.builtin else [])],
                "requests": {"cpu": r.dag.resources.cpu, "memory": r.dag.resources.memory},
                "limits": {"memory": r.dag.resources.memory}
                | ({"nvidia.com/gpu": str(r.dag.resources.gpu)} if r.dag.resources.gpu else {}),
                "labels": {
                    "modelci/project": r.names.project_slug,
                    "modelci/environment": r.names.environment,
                    "modelci/model": r.names.model,
                    "modelci/dag-kind": r.dag.kind,
                },
                "retries": r.dag.retries,
            }
        },
    }


def test_dagbag_loads_every_generated_file(
    airflow_home: AirflowHome, rendered: list[Rendered], tmp_path: Path
) -> None:
    for r in rendered:
        path = tmp_path / r.names.dag_path(r.dag.kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(r.source, encoding="utf-8")
    report = tmp_path / "dagbag.json"

    airflow_home.run(
        "DagBag parse",
        [str(AIRFLOW_PYTHON), "-c", DAGBAG_SCRIPT, str(tmp_path / "dags"), str(report)],
    )

    text = report.read_text()
    assert "LEAKED-VIA-JINJA" not in text  # no Variable or Connection reached a pod
    found = json.loads(text)
    assert found["import_errors"] == {}
    expected_ids = {r.names.dag_id(r.dag.kind) for r in rendered}
    assert len(expected_ids) == (len(BRANCHES) + 1) * len(DAG_KINDS) + 1
    assert set(found["dags"]) == expected_ids
    for r in rendered:
        dag = found["dags"][r.names.dag_id(r.dag.kind)]
        assert dag.pop("fileloc") == str(tmp_path / r.names.dag_path(r.dag.kind))
        if r.dag.kind == "training":
            context = dag["tasks"]["training"]["env_vars"].pop("MLFLOW_RUN_CONTEXT")
            tags = json.loads(context)
            assert tags["modelci.branch"] == r.names.branch
            assert tags["modelci.environment"] == r.names.environment
        assert dag == expected_dag(r)


def test_git_dag_bundles_serialize_the_pushed_dags(
    airflow_home: AirflowHome, rendered: list[Rendered], bare_repo: Path
) -> None:
    heads = {name: git.Repo(bare_repo).commit(ref).hexsha for name, ref in BUNDLES.items()}
    airflow_home.wait_for_database()

    for name in BUNDLES:
        airflow_home.airflow("dags", "reserialize", "-B", name)
    listed = json_output(airflow_home.airflow("dags", "list", "-o", "json"))

    by_id = {row["dag_id"]: row for row in listed}
    assert set(by_id) == {r.names.dag_id(r.dag.kind) for r in rendered}
    assert any(r.names.is_stand for r in rendered)
    for r in rendered:
        row = by_id[r.names.dag_id(r.dag.kind)]
        bundle = "modelci_stands" if r.names.is_stand else "modelci_branches"
        assert row["bundle_name"] == bundle
        assert row["bundle_version"] == heads[bundle]  # the commit of the branch it came from
        assert row["fileloc"].endswith("/" + r.names.dag_path(r.dag.kind))
        assert row["is_paused"] in (False, "False")  # created unpaused


def impostor_repo(
    rendered: list[Rendered], tmp_path: Path, *, run_first: str = ""
) -> tuple[Rendered, Rendered, str, Path]:
    """(stand DAG, feature DAG, impostor path, bare DAG repo): the stand's DAG on the stands
    branch; on main a feature DAG and, as a feature branch could push it, a file that declares
    the stand's dag_id (after `run_first`, code it runs while it is parsed)."""
    stand = next(r for r in rendered if r.names.is_stand and r.dag.kind == "inference")
    feature = next(r for r in rendered if not r.names.is_stand and r.dag.kind == "inference")
    impostor = f"dags/{stand.names.project_slug}/b-impostor/{stand.names.model}__inference.py"
    bare = make_bare_repo(
        tmp_path / "dags.git",
        {feature.names.dag_path("inference"): feature.source, impostor: run_first + stand.source},
    )
    add_branch(bare, BUNDLES[STANDS_BUNDLE], {stand.names.dag_path("inference"): stand.source})
    return stand, feature, impostor, bare


def install_policy(home: AirflowHome) -> None:
    """The README's cluster policy, where Airflow looks for it."""
    config = Path(home.env["AIRFLOW_HOME"]) / "config"
    config.mkdir()
    shutil.copy(ROOT / "scripts" / "airflow_local_settings.py", config)


@pytest.mark.parametrize("policy", [True, False], ids=["with-policy", "without-policy"])
def test_a_feature_branch_file_cannot_take_over_a_stands_dag(
    rendered: list[Rendered], tmp_path: Path, policy: bool
) -> None:
    """A file pushed with feature-branch credentials that declares a stand's dag_id: with the
    README's cluster policy (scripts/airflow_local_settings.py) it is an import error and the
    stand's DAG stays the stands bundle's; without it, it takes the stand's DAG over."""
    require(AIRFLOW_BIN)
    stand, feature, impostor, bare = impostor_repo(rendered, tmp_path)
    home = AirflowHome(tmp_path / "airflow", bare)
    if policy:
        install_policy(home)
    try:
        home.wait_for_database()
        home.airflow("dags", "reserialize", "-B", STANDS_BUNDLE)
        home.airflow("dags", "reserialize", "-B", BRANCHES_BUNDLE)
        listed = {
            row["dag_id"]: row for row in json_output(home.airflow("dags", "list", "-o", "json"))
        }
        # Exit 1 when there are import errors.
        errors = json_output(
            home.airflow("dags", "list-import-errors", "-o", "json", ok_codes=(0, 1))
        )
    finally:
        home.close()

    stand_id = stand.names.dag_id("inference")
    assert feature.names.dag_id("inference") in listed
    if policy:
        assert listed[stand_id]["bundle_name"] == STANDS_BUNDLE
        assert listed[stand_id]["fileloc"].endswith("/" + stand.names.dag_path("inference"))
        (error,) = errors
        assert error["bundle_name"] == BRANCHES_BUNDLE
        assert impostor.removeprefix("dags/") == error["filepath"]
        assert "holds only feature environments' DAGs" in error["error"]
    else:
        assert errors == []
        assert listed[stand_id]["bundle_name"] == BRANCHES_BUNDLE  # taken over


# Code a feature branch's DAG file runs while it is parsed, before it declares its DAG: the
# cluster policy lives in the same process, so the file can switch it off.
POLICY_BYPASS = """\
import airflow.settings
airflow.settings.dag_policy = lambda dag: None
"""


def reserialized(home: AirflowHome, bundles: list[str]) -> dict[str, dict]:
    try:
        home.wait_for_database()
        for bundle in bundles:
            home.airflow("dags", "reserialize", "-B", bundle)
        rows = json_output(home.airflow("dags", "list", "-o", "json"))
    finally:
        home.close()
    return {row["dag_id"]: row for row in rows}


def test_parse_time_code_defeats_a_shared_airflows_policy_not_a_stands_airflow(
    rendered: list[Rendered], tmp_path: Path
) -> None:
    """The set-up the README requires: the stands' bundle is parsed by an Airflow of its own
    (its own dag-processor and metadata database). A branch file that switches the cluster
    policy off while it is parsed and declares a stand's dag_id takes the stand's DAG over in
    an Airflow that parses both bundles, policy or not (the shared set-up's residual risk);
    the stands' own Airflow keeps the stand's DAG from the stands branch."""
    require(AIRFLOW_BIN)
    stand, _, _, bare = impostor_repo(rendered, tmp_path, run_first=POLICY_BYPASS)
    homes = {
        "shared": AirflowHome(tmp_path / "shared", bare),
        "stands": AirflowHome(tmp_path / "stands", bare, bundles={STANDS_BUNDLE: "stands"}),
    }
    for home in homes.values():
        install_policy(home)

    shared = reserialized(homes["shared"], [STANDS_BUNDLE, BRANCHES_BUNDLE])
    own = reserialized(homes["stands"], [STANDS_BUNDLE])

    stand_id = stand.names.dag_id("inference")
    assert shared[stand_id]["bundle_name"] == BRANCHES_BUNDLE  # taken over despite the policy
    assert set(own) == {stand_id}
    assert own[stand_id]["bundle_name"] == STANDS_BUNDLE
    assert own[stand_id]["fileloc"].endswith("/" + stand.names.dag_path("inference"))
