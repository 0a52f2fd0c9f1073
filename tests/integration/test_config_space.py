"""A config `modelci validate` accepts is a config that works downstream.

Hypothesis draws mlops.yaml files over the config space: stands or none, one or two models,
every flavor, both engines, each DAG kind, schedules, resources, replica counts, arguments with
placeholders and template syntax, monitoring. For every drawn file:
- refused: exit 2, the file and field named, no traceback;
- accepted: `modelci render` (the command a data scientist runs) prints every file, the Helm
  values render with the real chart into objects KServe's CRD schema accepts.
Then all accepted configs' DAGs are imported together by real Airflow (DagBag), each task
rendered as a task run would render it, and every SparkApplication is held against the Spark
Operator's CRD schema. Any config validate accepts that fails later fails this test.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from modelci.cli import main
from modelci.render.values import chart_dir
from tests.harness.airflow import parse_dag_folder
from tests.harness.tools import AIRFLOW_PYTHON, require

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "schemas"
ISVC_SCHEMA = json.loads((SCHEMAS / "kserve/inferenceservice-v1beta1.strict.json").read_text())
SPARK_SCHEMA = json.loads(
    (SCHEMAS / "spark-operator/sparkapplication-v1beta2.strict.json").read_text()
)
EXAMPLES = 120  # drawn files; about a third are refused on purpose

# --- the config space ---------------------------------------------------------------------------


def pool(usual: tuple[Any, ...], odd: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """Usual values four times as often as odd ones (edge cases, near misses, mistakes)."""
    return st.sampled_from(usual * 4 + odd)


FILES = ("train.py", "score.py", "src/jobs/retrain.py")
STAND_NAMES = ("dev", "qa", "staging", "prod", "production", "canary-eu")
MODEL_NAMES = pool(("churn", "fraud-2"), ("a", "x1234567890123456789", "Churn"))
FLAVORS = pool(("sklearn", "pyfunc", "xgboost", "lightgbm"), ("pytorch", "spark", "sklearn2"))
ARGS = pool(
    ("--date", "${ds}", "--rows=1000", "a b"),
    (
        "${ts}",
        "${data_interval_end}",
        "{{ var.value.secret }}",
        "{% if 1 %}x{% endif %}",
        "$CI_JOB_TOKEN",
        "${unknown}",
        "100%",
        "ünïcødé",
    ),
)
CPUS = pool(("1", "500m", "0.5", 2), ("250m", "1.5", 0.001, "0.0001", "1000"))
MEMORIES = pool(("512Mi", "1Gi", "2G"), ("1.5Gi", "100M", "1Ti", "2gb"))
SPARK_MEMORIES = pool(("512m", "1g", "2G", "4096m"), ("2gb", "512M", "1k", "100000g"))
SCHEDULES = pool(
    ("@daily", "0 6 * * *", None), ("*/15 * * * *", "@hourly", "0 0 30 2 *", "0 25 * * *")
)
METRICS = pool(("accuracy", "f1", "rmse"), ("val/loss", "r2 score", ".", "a" * 251))
COLUMNS = ("tenure", "region", "amount", "is_new", "score", "label")


def maybe(draw: st.DrawFn, target: dict[str, Any], key: str, values: st.SearchStrategy) -> None:
    """Set `key` in `target` to a drawn value, or leave it out (its default then applies)."""
    if draw(st.booleans()):
        target[key] = draw(values)


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    drawn: dict[str, Any] = {}
    maybe(draw, drawn, "cpu", CPUS)
    maybe(draw, drawn, "memory", MEMORIES)
    maybe(draw, drawn, "gpu", st.integers(0, 2))
    return drawn


@st.composite
def spark_part(draw: st.DrawFn, executor: bool) -> dict[str, Any]:
    drawn: dict[str, Any] = {}
    maybe(draw, drawn, "cores", st.sampled_from((1, 2, 4, 256)))
    maybe(draw, drawn, "memory", SPARK_MEMORIES)
    if executor:
        maybe(draw, drawn, "instances", st.sampled_from((1, 2, 10, 1000)))
    return drawn


@st.composite
def train(draw: st.DrawFn) -> dict[str, Any]:
    drawn: dict[str, Any] = {"entrypoint": draw(st.sampled_from(FILES))}
    maybe(draw, drawn, "args", st.lists(ARGS, max_size=4))
    maybe(draw, drawn, "resources", resources())
    if draw(st.booleans()):
        drawn["engine"] = "spark"
        spark: dict[str, Any] = {}
        maybe(draw, spark, "driver", spark_part(False))
        maybe(draw, spark, "executor", spark_part(True))
        maybe(draw, spark, "ci", st.fixed_dictionaries({"args": st.lists(ARGS, max_size=2)}))
        drawn["spark"] = spark
    return drawn


@st.composite
def threshold(draw: st.DrawFn) -> dict[str, Any]:
    bounds = st.sampled_from(
        ({"min": 0.5}, {"max": 35}, {"min": 0.8, "max": 1.0}, {"min": 0.9, "max": 0.8})
    )
    return {"name": draw(METRICS), **draw(bounds)}


@st.composite
def gate(draw: st.DrawFn) -> dict[str, Any]:
    drawn: dict[str, Any] = {
        "metrics": draw(
            st.lists(threshold(), min_size=1, max_size=2, unique_by=lambda t: t["name"])
        )
    }
    maybe(draw, drawn, "compare_with_production", st.booleans())
    maybe(draw, drawn, "tolerance", st.sampled_from((0, 0.02, 1)))
    return drawn


@st.composite
def dag(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    drawn: dict[str, Any] = {"kind": kind}
    if kind != "training" or draw(st.booleans()):
        drawn["entrypoint"] = draw(st.sampled_from(FILES))
    maybe(draw, drawn, "args", st.lists(ARGS, max_size=4))
    maybe(draw, drawn, "schedule", SCHEDULES)
    maybe(draw, drawn, "retries", st.integers(0, 5))
    maybe(draw, drawn, "resources", resources())
    return drawn


@st.composite
def monitoring(draw: st.DrawFn) -> dict[str, Any]:
    features = draw(st.lists(st.sampled_from(COLUMNS[:4]), min_size=1, max_size=4))
    drawn: dict[str, Any] = {
        "data": "scores/${ds}.csv",
        "reference": "reference.csv",
        "features": features,
    }
    maybe(draw, drawn, "score", st.just("score"))
    maybe(draw, drawn, "schedule", SCHEDULES)
    maybe(draw, drawn, "max_psi", st.sampled_from((0.1, 0.25)))
    maybe(draw, drawn, "ranges", st.just({"amount": [0, 1000]}))
    if "score" in drawn and draw(st.booleans()):
        drawn["ground_truth"] = {
            "label": "label",
            "metric": draw(st.sampled_from(("accuracy", "rmse", "mae"))),
            **draw(st.sampled_from(({"min": 0.7}, {"max": 35.0}))),
        }
    maybe(draw, drawn, "retrain", st.just({"cooldown_hours": 12}))
    return drawn


@st.composite
def model(draw: st.DrawFn) -> dict[str, Any]:
    drawn: dict[str, Any] = {
        "name": draw(MODEL_NAMES),
        "flavor": draw(FLAVORS),
        "train": draw(train()),
        "gate": draw(gate()),
    }
    kinds = draw(st.lists(st.sampled_from(("training", "inference")), unique=True, max_size=2))
    if kinds:
        drawn["batch"] = {"dags": [draw(dag(kind)) for kind in kinds]}
        maybe(draw, drawn["batch"], "resources", resources())
    if draw(st.booleans()):
        drawn["online"] = {"enabled": True}
        maybe(draw, drawn["online"], "min_replicas", st.integers(0, 3))
        maybe(draw, drawn["online"], "max_replicas", st.integers(1, 5))
        maybe(draw, drawn["online"], "resources", resources())
    if "inference" in kinds and draw(st.booleans()):
        drawn["monitoring"] = draw(monitoring())
    return drawn


@st.composite
def config(draw: st.DrawFn) -> dict[str, Any]:
    drawn: dict[str, Any] = {"version": 1}
    maybe(draw, drawn, "python", st.sampled_from(("3.11", "3.12")))
    maybe(
        draw,
        drawn,
        "image",
        st.sampled_from(("registry.example.com/ml/churn:1.0", "python:3.11-slim")),
    )
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(STAND_NAMES), min_size=1, max_size=3, unique=True))
        drawn["stands"] = [{"name": name, "manual": index > 0} for index, name in enumerate(names)]
    drawn["models"] = draw(st.lists(model(), min_size=1, max_size=2, unique_by=lambda m: m["name"]))
    return drawn


# --- what each drawn config must do --------------------------------------------------------------


@dataclass
class Seen:
    accepted: int = 0
    refused: int = 0
    online: int = 0
    dags: dict[str, str] = field(default_factory=dict)  # path -> source, of accepted configs
    expected_dag_ids: set[str] = field(default_factory=set)


def write_repo(where: Path, document: dict[str, Any]) -> Path:
    for name in FILES:
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text("print('hello')\n", encoding="utf-8")
    path = where / "mlops.yaml"
    with path.open("w", encoding="utf-8") as out:
        YAML().dump(document, out)
    return path


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def printed_files(output: str) -> dict[str, str]:
    """The files `modelci render` prints, each under a `==> path <==` line."""
    files: dict[str, str] = {}
    current = None
    for line in output.splitlines(keepends=True):
        if line.startswith("==> ") and line.rstrip().endswith(" <=="):
            current = line[4:].rstrip()[:-4]
            files[current] = ""
        elif current is not None:
            files[current] += line
    return files


def check_values(chart: helm.Chart, values_text: str) -> None:
    values = yaml.safe_load(values_text)
    manifests = chart.render(values, name=values["name"], namespace="ml-gen")
    services = [
        document
        for path, text in manifests.items()
        if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text)
        if document and document["kind"] == "InferenceService"
    ]
    assert len(services) == 1
    jsonschema.Draft7Validator(ISVC_SCHEMA).validate(services[0])


def check_one(document: dict[str, Any], index: int, chart: helm.Chart, seen: Seen) -> None:
    with tempfile.TemporaryDirectory() as where:
        path = write_repo(Path(where), document)
        code, _, err = run_cli("validate", "--config", str(path))
        assert "Traceback" not in err, err
        if code != 0:
            assert code == 2 and "mlops.yaml:" in err, err
            seen.refused += 1
            return
        project = f"ml/gen-{index}"
        code, out, err = run_cli(
            "render", "--config", str(path), "--project", project, "--branch", "feature/x"
        )
    assert code == 0 and "Traceback" not in err, f"validate accepted, render failed:\n{err}"
    seen.accepted += 1
    for name, text in printed_files(out).items():
        if name.endswith(".py"):
            seen.dags[name] = text
            seen.expected_dag_ids.add(dag_id_of(text))
        elif name.endswith("values.yaml"):
            check_values(chart, text)
            seen.online += 1


def dag_id_of(source: str) -> str:
    line = next(line for line in source.splitlines() if line.startswith("DAG_ID = "))
    return ast.literal_eval(line.removeprefix("DAG_ID = "))


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of a CI job's or of the test stack's: render shows placeholders instead."""
    for name in list(os.environ):
        if name.startswith(("CI_", "MLFLOW_", "AWS_", "MODELCI_", "GITLAB_")) or name == "CI":
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(chart_dir()) as loaded:
        yield loaded


def test_every_config_validate_accepts_renders_deploys_and_imports(
    clean_environment: None, chart: helm.Chart, tmp_path: Path
) -> None:
    require(AIRFLOW_PYTHON)
    seen = Seen()
    counter = iter(range(10**6))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(document=config())
    def each(document: dict[str, Any]) -> None:
        check_one(document, next(counter), chart, seen)

    each()

    # The space is explored on both sides of the line, not only one.
    assert seen.accepted >= EXAMPLES // 4 and seen.refused >= EXAMPLES // 10, seen
    assert seen.online >= 10 and len(seen.dags) >= 20, seen
    folder = tmp_path / "bundle"
    for name, source in seen.dags.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(source, encoding="utf-8")
    found = parse_dag_folder(folder, tmp_path / "dagbag.json")
    assert found["import_errors"] == {}
    assert set(found["dags"]) == seen.expected_dag_ids
    assert "LEAKED-VIA-JINJA" not in json.dumps(found)  # no Variable or Connection was read
    for dag in found["dags"].values():
        for task in dag["tasks"].values():
            if "spark_application" in task:
                jsonschema.Draft7Validator(SPARK_SCHEMA).validate(task["spark_application"])
    shutil.rmtree(folder)
