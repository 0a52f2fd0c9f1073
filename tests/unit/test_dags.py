"""The generated Airflow DAG code: right literals, stable bytes, and a structure no input can alter.

The generated module is only read with `ast` here (never executed); `tests/integration/
test_airflow.py` loads the same output with a real Airflow.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import tokenize
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelci.config.fields import DAG_KINDS
from modelci.config.macros import MACROS, env_name
from modelci.config.naming import Names, names_for
from modelci.config.settings import Pipeline
from modelci.config.types import Dag, Gate, Model, Resources, Train
from modelci.render.dags import RUN_VALUES, MonitorTarget, comment_text, pyliteral, render_dag

PROJECT = "ml/churn"
BRANCH = "feature/Add-XGB"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PIPELINE_URL = "https://gitlab.example.com/ml/churn/-/pipelines/42"

TOP_LEVEL_KINDS = ["ImportFrom"] * 4 + ["Assign"] * 8 + ["With"]
ALLOWED_CALLS = {
    "DAG",
    "datetime",
    "KubernetesPodOperator",
    "k8s.V1EnvFromSource",
    "k8s.V1SecretEnvSource",
    "k8s.V1ResourceRequirements",
    "literal",
    "ENV_VARS.items",
}
# Every operator value is wrapped in literal() except env_vars, which adds the run values.
ENV_VARS_EXPRESSION = "{**{name: literal(value) for name, value in ENV_VARS.items()}, **RUN_VALUES}"

HOSTILE = [
    "'",
    '"',
    "'''",
    '"""',
    "\\",
    "\\'",
    "\n",
    "\r\n",
    "\r",
    "\u2028",
    "\u2029",
    "\x85",
    "\x00",
    "\x0c",
    "\x1b[31m",
    "\u202e",  # bidi override ("trojan source")
    "\ud800",  # lone surrogate
    '"""); import os; os.system(\'x\') #',
    "'); import os; os.system('x') #",
    "\nimport os\nos.system('x')\n#",
    "{{ 7 * 7 }}{% raw %}",
    "é ünï 名前",
]


def make_model(name: str = "churn") -> Model:
    return Model(
        name=name, flavor="sklearn", train=Train(entrypoint="train.py"), gate=Gate(metrics=())
    )


def make_dag(kind: str = "inference", **changes: Any) -> Dag:
    fields: dict[str, Any] = {
        "kind": kind,
        "entrypoint": "score.py",
        "args": ("--date", "{{ ds }}"),
        "schedule": "@daily",
        "retries": 2,
        "resources": Resources(cpu="500m", memory="1Gi", gpu=0),
    }
    fields.update(changes)
    return Dag(**fields)


def make_pipeline(**changes: str) -> Pipeline:
    fields = {
        "project": PROJECT,
        "project_url": "https://gitlab.example.com/ml/churn",
        "branch": BRANCH,
        "default_branch": "main",
        "commit": COMMIT,
        "pipeline_id": "42",
        "pipeline_url": PIPELINE_URL,
        "job_url": "https://gitlab.example.com/ml/churn/-/jobs/7",
        "user": "ds",
    }
    fields.update(changes)
    return Pipeline(**fields)


def render_kwargs(**changes: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "names": names_for(PROJECT, BRANCH, "churn"),
        "model": make_model(),
        "dag": make_dag(),
        "pipeline": make_pipeline(),
        "image": "registry.example.com/ml/churn:1.0",
        "model_uri": "models:/m-0123abcd",
        "run_id": "abc123def456",
        "code_uri": "s3://mlops/scratch/ml-churn/b-feature/code-0123456789ab.tar.gz",
        "s3_secret": "modelci-s3",
        "tracking_uri": "http://mlflow.mlops.svc:5000",
    }
    kwargs.update(changes)
    return kwargs


# --- reading the generated module with ast ------------------------------------------------


def constants(tree: ast.Module) -> dict[str, Any]:
    """Top-level `NAME = <literal>` assignments; literal_eval fails on anything but a literal."""
    return {
        stmt.targets[0].id: ast.literal_eval(stmt.value)
        for stmt in tree.body
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
    }


def keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {kw.arg: kw.value for kw in call.keywords if kw.arg is not None}


def dag_call(tree: ast.Module) -> ast.Call:
    with_stmt = tree.body[-1]
    assert isinstance(with_stmt, ast.With)
    call = with_stmt.items[0].context_expr
    assert isinstance(call, ast.Call)
    return call


def operator_call(tree: ast.Module) -> ast.Call:
    with_stmt = tree.body[-1]
    assert isinstance(with_stmt, ast.With)
    assert len(with_stmt.body) == 1
    expr = with_stmt.body[0]
    assert isinstance(expr, ast.Expr) and isinstance(expr.value, ast.Call)
    return expr.value


def value_of(node: ast.expr, names: dict[str, Any]) -> Any:
    """A keyword's value: a literal, or a top-level constant it names, maybe inside literal()."""
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "literal":
        (inner,) = node.args
        return value_of(inner, names)
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.Dict) and ast.unparse(node) == ENV_VARS_EXPRESSION:
        return {**names["ENV_VARS"], **names["RUN_VALUES"]}
    return ast.literal_eval(node)


def is_literal_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and ast.unparse(node.func) == "literal"


def shape(source: str) -> str:
    """The module's AST with every literal replaced by its type: equal shapes, equal code."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.value = type(node.value).__name__
    return ast.dump(tree)


def comments(source: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [tok.string for tok in tokens if tok.type == tokenize.COMMENT]


def read(source: str) -> dict[str, Any]:
    """Everything a user relies on in the generated file, as plain Python values."""
    tree = ast.parse(source)
    names = constants(tree)
    dag_kwargs = keywords(dag_call(tree))
    op_kwargs = keywords(operator_call(tree))
    resources = op_kwargs["container_resources"]
    assert isinstance(resources, ast.Call)
    res_kwargs = keywords(resources)
    env_from = op_kwargs["env_from"]
    assert isinstance(env_from, ast.List)
    secret_ref = keywords(env_from.elts[0])["secret_ref"]  # type: ignore[arg-type]
    return {
        "constants": names,
        "dag": {k: value_of(v, names) for k, v in dag_kwargs.items() if k != "start_date"},
        "start_date": ast.unparse(dag_kwargs["start_date"]),
        "operator": {
            k: value_of(v, names)
            for k, v in op_kwargs.items()
            if k not in ("env_from", "container_resources", "cmds")
        },
        "cmds": value_of(op_kwargs["cmds"].args[0], names),  # type: ignore[attr-defined]
        "secret": value_of(keywords(secret_ref)["name"], names),  # type: ignore[arg-type]
        "requests": value_of(res_kwargs["requests"], names),
        "limits": value_of(res_kwargs["limits"], names),
    }


# --- what the file says ---------------------------------------------------------------


def test_output_compiles_with_the_expected_statements() -> None:
    source = render_dag(**render_kwargs())
    compile(source, "dag.py", "exec")
    tree = ast.parse(source)
    assert [type(stmt).__name__ for stmt in tree.body] == TOP_LEVEL_KINDS
    imports = {
        (stmt.module, alias.name, alias.asname)
        for stmt in tree.body
        if isinstance(stmt, ast.ImportFrom)
        for alias in stmt.names
    }
    assert imports == {
        ("datetime", "datetime", None),
        ("datetime", "timezone", None),
        ("airflow.providers.cncf.kubernetes.operators.pod", "KubernetesPodOperator", None),
        ("airflow.sdk", "DAG", None),
        ("airflow.sdk", "literal", None),
        ("kubernetes.client", "models", "k8s"),
    }
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert calls == ALLOWED_CALLS


def test_literals_are_the_inputs() -> None:
    kwargs = render_kwargs()
    names: Names = kwargs["names"]
    got = read(render_dag(**kwargs))

    assert got["dag"] == {
        "dag_id": names.dag_id("inference"),
        "description": f"inference of churn for {PROJECT} @ {BRANCH}",
        "schedule": "@daily",
        "catchup": False,
        "max_active_runs": 1,
        "is_paused_upon_creation": False,
        "tags": [names.project_slug, names.environment, "churn", "inference"],
    }
    assert got["start_date"] == "datetime(2024, 1, 1, tzinfo=timezone.utc)"
    operator = got["operator"]
    assert operator["task_id"] == "inference"
    assert operator["name"] == "churn-inference"
    assert operator["namespace"] == names.namespace
    assert operator["image"] == "registry.example.com/ml/churn:1.0"
    assert operator["retries"] == 2
    assert got["cmds"] == ["modelci", "pod-run", "--code", kwargs["code_uri"], "--"]
    assert operator["arguments"] == ["python", "score.py", "--date", "{{ ds }}"]
    assert operator["env_vars"] == {
        "MODEL_URI": "models:/m-0123abcd",
        "MLFLOW_RUN_ID": "abc123def456",
        "MLFLOW_TRACKING_URI": "http://mlflow.mlops.svc:5000",
        "MODELCI_ENVIRONMENT": names.environment,
        "MODELCI_MODEL": "churn",
        "MODELCI_CODE_URI": kwargs["code_uri"],
        **RUN_VALUES,
    }
    assert operator["labels"] == {
        "modelci/project": names.project_slug,
        "modelci/environment": names.environment,
        "modelci/model": "churn",
        "modelci/dag-kind": "inference",
    }
    assert got["secret"] == "modelci-s3"
    assert got["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert got["limits"] == {"memory": "1Gi"}


def test_airflow_renders_no_operator_value_but_the_run_values() -> None:
    """Every templated operator argument is literal(...); env_vars adds only RUN_VALUES."""
    tree = ast.parse(render_dag(**render_kwargs()))
    op_kwargs = keywords(operator_call(tree))
    templated = ("name", "namespace", "image", "cmds", "arguments", "labels")
    assert all(is_literal_call(op_kwargs[key]) for key in templated)
    assert ast.unparse(op_kwargs["env_vars"]) == ENV_VARS_EXPRESSION
    resources = keywords(op_kwargs["container_resources"])  # type: ignore[arg-type]
    assert is_literal_call(resources["requests"]) and is_literal_call(resources["limits"])
    assert set(constants(tree)["RUN_VALUES"]) == {env_name(macro) for macro in MACROS}


def test_no_secret_value_is_written() -> None:
    source = render_dag(**render_kwargs())
    assert "AWS_SECRET_ACCESS_KEY" not in source
    assert "AWS_ACCESS_KEY_ID" not in source


@pytest.mark.parametrize("kind", DAG_KINDS)
def test_every_kind_renders(kind: str) -> None:
    kwargs = render_kwargs(dag=make_dag(kind))
    got = read(render_dag(**kwargs))
    assert got["dag"]["dag_id"] == kwargs["names"].dag_id(kind)
    assert got["dag"]["tags"][-1] == kind
    assert got["operator"]["task_id"] == kind
    assert got["operator"]["labels"]["modelci/dag-kind"] == kind


def test_dag_ids_differ_per_kind_environment_and_stand() -> None:
    ids = set()
    for names in (
        names_for(PROJECT, BRANCH, "churn"),
        names_for(PROJECT, "feature/other", "churn"),
        names_for(PROJECT, "main", "churn", stand="production"),
    ):
        for kind in DAG_KINDS:
            source = render_dag(**render_kwargs(names=names, dag=make_dag(kind)))
            ids.add(read(source)["dag"]["dag_id"])
    assert len(ids) == 3 * len(DAG_KINDS)


def test_no_schedule_means_triggered_by_hand() -> None:
    got = read(render_dag(**render_kwargs(dag=make_dag(schedule=None))))
    assert got["dag"]["schedule"] is None


def test_gpus_become_a_limit() -> None:
    dag = make_dag(resources=Resources(cpu="2", memory="8Gi", gpu=2))
    got = read(render_dag(**render_kwargs(dag=dag)))
    assert got["requests"] == {"cpu": "2", "memory": "8Gi"}
    assert got["limits"] == {"memory": "8Gi", "nvidia.com/gpu": "2"}


def test_header_says_who_wrote_it() -> None:
    kwargs = render_kwargs()
    source = render_dag(**kwargs)
    lines = source.splitlines()
    header = lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]
    assert header == comments(source)[: len(header)]
    assert header[0].startswith("# generated by modelci — do not edit")
    text = "\n".join(header)
    for expected in (PROJECT, BRANCH, kwargs["names"].environment, PIPELINE_URL, COMMIT):
        assert expected in text
    assert "abc123def456" in text  # the MLflow run


def test_same_inputs_give_the_same_bytes() -> None:
    first = render_dag(**render_kwargs())
    second = render_dag(**render_kwargs())  # equal, freshly built inputs
    assert first.encode() == second.encode()
    assert first.endswith(")\n")


def test_model_must_match_the_names() -> None:
    with pytest.raises(ValueError, match="not 'other'"):
        render_dag(**render_kwargs(model=make_model("other")))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown DAG kind"):
        render_dag(**render_kwargs(dag=make_dag("cleanup")))


# --- hostile values ---------------------------------------------------------------------


def hostile_kwargs(evil: str) -> dict[str, Any]:
    """Every string input carries `evil`; the branch and project go through the real naming."""
    project = f"ml/churn{evil}"
    branch = f"feature/{evil}x"
    return render_kwargs(
        names=names_for(project, branch, "churn"),
        dag=make_dag(
            entrypoint=f"score{evil}.py",
            args=(evil, f"--x={evil}"),
            schedule=f"@daily{evil}",
            resources=Resources(cpu=f"1{evil}", memory=f"1Gi{evil}", gpu=1),
        ),
        pipeline=make_pipeline(
            project=project,
            project_url=f"https://gitlab.example.com/{evil}",
            branch=branch,
            commit=f"{evil}{COMMIT}",
            pipeline_url=f"{PIPELINE_URL}{evil}",
        ),
        image=f"registry.example.com/x:{evil}",
        model_uri=f"models:/{evil}",
        run_id=evil,
        code_uri=f"s3://mlops/{evil}.tar.gz",
        s3_secret=evil,
        tracking_uri=f"http://mlflow{evil}",
    )


def assert_same_structure(source: str, reference: str) -> None:
    compile(source, "dag.py", "exec")
    assert shape(source) == shape(reference)
    # No extra physical line anywhere, for Python or for an editor (U+2028, U+0085...).
    assert source.splitlines() == source.split("\n")[:-1]
    assert len(source.splitlines()) == len(reference.splitlines())
    assert len(comments(source)) == len(comments(reference))


@pytest.mark.parametrize("evil", HOSTILE, ids=ascii)
def test_hostile_inputs_cannot_change_the_code(evil: str) -> None:
    kwargs = hostile_kwargs(evil)
    reference = render_dag(**hostile_kwargs("x"))
    source = render_dag(**kwargs)
    assert_same_structure(source, reference)

    got = read(source)
    names: Names = kwargs["names"]
    assert got["dag"]["dag_id"] == names.dag_id("inference")
    assert got["dag"]["schedule"] == f"@daily{evil}"
    assert got["dag"]["description"] == f"inference of churn for ml/churn{evil} @ feature/{evil}x"
    assert got["operator"]["image"] == f"registry.example.com/x:{evil}"
    assert got["operator"]["arguments"] == ["python", f"score{evil}.py", evil, f"--x={evil}"]
    assert got["operator"]["env_vars"]["MODEL_URI"] == f"models:/{evil}"
    assert got["operator"]["env_vars"]["MLFLOW_RUN_ID"] == evil
    assert got["operator"]["env_vars"]["MLFLOW_TRACKING_URI"] == f"http://mlflow{evil}"
    assert got["cmds"][3] == f"s3://mlops/{evil}.tar.gz"
    assert got["secret"] == evil
    assert got["requests"] == {"cpu": f"1{evil}", "memory": f"1Gi{evil}"}
    assert comment_text(f"feature/{evil}x") in source


@pytest.mark.parametrize("evil", HOSTILE, ids=ascii)
def test_hostile_names_cannot_change_the_code(evil: str) -> None:
    """Even names that bypassed naming's checks only ever appear as literals and comments."""

    def poisoned(suffix: str) -> Names:
        clean = names_for(PROJECT, BRANCH, "churn")
        return dataclasses.replace(
            clean,
            **{
                field.name: f"{getattr(clean, field.name)}{suffix}"
                for field in dataclasses.fields(clean)
                if isinstance(getattr(clean, field.name), str)
            },
        )

    reference = render_dag(**render_kwargs(names=poisoned("x"), model=make_model("churnx")))
    names = poisoned(evil)
    source = render_dag(**render_kwargs(names=names, model=make_model(f"churn{evil}")))
    assert_same_structure(source, reference)
    got = read(source)
    assert got["dag"]["dag_id"] == names.dag_id("inference")
    assert got["dag"]["tags"] == [names.project_slug, names.environment, names.model, "inference"]
    assert got["operator"]["namespace"] == names.namespace
    assert got["operator"]["env_vars"]["MODELCI_ENVIRONMENT"] == names.environment


# --- the two escaping functions -----------------------------------------------------------


@given(st.text())
def test_pyliteral_round_trips_any_string_on_one_ascii_line(text: str) -> None:
    literal = pyliteral(text)
    assert literal.isascii() and literal.isprintable()
    assert ast.literal_eval(literal) == text


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_pyliteral_round_trips_nested_values(value: Any) -> None:
    assert ast.literal_eval(pyliteral(value)) == value


@pytest.mark.parametrize(
    "value", [b"bytes", {1, 2}, {1: "int key"}, float("nan"), float("inf"), object(), [object()]]
)
def test_pyliteral_refuses_other_values(value: Any) -> None:
    with pytest.raises(TypeError):
        pyliteral(value)


@given(st.text())
def test_comment_text_stays_on_one_comment_line(text: str) -> None:
    line = f"# {comment_text(text)}\n"
    assert line.splitlines() == [line[:-1]]
    assert comments(line + "x = 1\n") == [line[:-1]]


def test_a_model_environment_archive_is_named_to_pod_run() -> None:
    uri = "s3://mlops/scratch/envs/py3.11-0123456789abcdef0123/environment.tar.gz"
    kwargs = {**render_kwargs(), "environment_uri": uri}
    got = read(render_dag(**kwargs))
    assert got["cmds"] == ["modelci", "pod-run", "--code", kwargs["code_uri"], "--env", uri, "--"]
    assert got["constants"]["ENV_VARS"]["MODELCI_ENVIRONMENT_URI"] == uri
    without = read(render_dag(**render_kwargs()))
    assert "--env" not in without["cmds"]
    assert "MODELCI_ENVIRONMENT_URI" not in without["constants"]["ENV_VARS"]


def test_the_monitoring_dag_runs_modelci_monitor_and_may_trigger_retraining() -> None:
    dag = make_dag("monitoring", entrypoint="modelci monitor", args=(), builtin=True, retries=0)
    target = MonitorTarget(
        config_file="models/mlops.yaml",
        gitlab_url="https://gitlab.example.com",
        ref="main",
        trigger_secret="modelci-retrain-trigger",
    )
    for stand in (None, "production"):
        names = names_for(PROJECT, BRANCH, "churn", stand=stand)
        source = render_dag(
            **render_kwargs(
                names=names,
                dag=dag,
                monitor=target,
                data_uri="s3://mlops/scratch/ml-churn/production/data/churn/",
                environment_uri="s3://mlops/scratch/envs/py3.11-abc/environment.tar.gz",
            )
        )
        found = constants(ast.parse(source))
        stand_args = ["--stand", "production"] if stand else []
        assert found["COMMAND"] == [
            "modelci", "monitor", "--config", "models/mlops.yaml", "--model", "churn", *stand_args
        ]  # fmt: skip
        assert "--env" not in found["POD_RUN"]  # modelci runs in the image, not the model's env
        assert found["TRIGGER_SECRET"] == "modelci-retrain-trigger"
        assert found["ENV_VARS"]["MODELCI_DATA_URI"].endswith("/production/data/churn/")
        assert found["ENV_VARS"]["MODELCI_EXPERIMENT"] == names.experiment
        assert found["ENV_VARS"]["MODELCI_RETRAIN_REF"] == "main"
        assert "optional=True" in source


def test_a_scoring_dag_gets_the_data_prefix_and_no_trigger_secret() -> None:
    source = render_dag(**render_kwargs(data_uri="s3://mlops/scratch/ml-churn/b-x/data/churn/"))
    found = constants(ast.parse(source))
    assert found["ENV_VARS"]["MODELCI_DATA_URI"] == "s3://mlops/scratch/ml-churn/b-x/data/churn/"
    assert "TRIGGER_SECRET" not in found and "MODELCI_GITLAB_URL" not in found["ENV_VARS"]
