"""`modelci render` as a data scientist runs it on a laptop, in a separate process: every example
model repository validates and renders (exit 0, no traceback, nothing written) with nothing of
the platform set and with MLflow, boto3 and botocore not importable at all; a Spark model's
training DAG shows its SparkApplication, which the Spark Operator's CRD schema accepts, with the
environment archive only `modelci resolve` knows as a marked placeholder."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from modelci.commands.render import PLACEHOLDER_ENVIRONMENT
from modelci.config.mlops import load_config
from modelci.config.naming import names_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(path.parent for path in (ROOT / "examples").glob("*/mlops.yaml"))
SCHEMA = json.loads(
    (ROOT / "tests/schemas/spark-operator/sparkapplication-v1beta2.strict.json").read_text()
)
PROJECT = "ml/churn"
BRANCH = "feature/render"
# The packages a pipeline's remote steps use; a dry run must work without any of them.
REMOTE_CLIENTS = ("mlflow", "boto3", "botocore")
# `python -m modelci` with those packages made unimportable (a None in sys.modules makes
# `import x` raise ImportError), as on a laptop where only modelci's own code runs.
WITHOUT_REMOTE_CLIENTS = (
    "import sys\n"
    f"sys.modules.update(dict.fromkeys({REMOTE_CLIENTS!r}))\n"
    "from modelci.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def modelci(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`modelci` in a process of its own, with no CI, MLflow, S3 or modelci variable set."""
    prefixes = ("CI_", "MLFLOW_", "AWS_", "MODELCI_", "GITLAB_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k != "CI"}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_REMOTE_CLIENTS, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def render(repo: Path) -> dict[str, str]:
    """{path: text} of every file `modelci render` prints for the repository `repo`."""
    result = modelci(
        "render", "--config", "mlops.yaml", "--project", PROJECT, "--branch", BRANCH, cwd=repo
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no traceback, no warning
    files: dict[str, str] = {}
    path = ""
    for line in result.stdout.splitlines(keepends=True):
        if line.startswith("==> ") and line.rstrip("\n").endswith(" <=="):
            path = line[4:].rstrip("\n")[:-4]
            files[path] = ""
        else:
            files[path] += line
    return files


def constants(source: str) -> dict[str, Any]:
    """The module-level constants of a generated DAG file, as Python evaluates them."""
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
    }


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_the_examples_are_the_ones_the_repository_ships() -> None:
    assert [path.name for path in EXAMPLES] == ["churn", "churn-spark"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_every_example_validates_and_renders_every_file_it_deploys(example: Path) -> None:
    before = snapshot(example)

    validated = modelci("validate", "--config", "mlops.yaml", cwd=example)
    files = render(example)

    assert validated.returncode == 0, validated.stderr
    assert "mlops.yaml: valid" in validated.stdout
    expected = set()
    for model in load_config(example / "mlops.yaml").models:
        names = names_for(PROJECT, BRANCH, model.name)
        expected |= {names.dag_path(dag.kind) for dag in model.batch.dags}
        if model.online.enabled:
            expected |= {names.values_path, names.app_config_path}
    assert set(files) == expected
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")  # a DAG file Airflow can import
            application = constants(text).get("SPARK_APPLICATION")
            if application is not None:
                jsonschema.Draft7Validator(SCHEMA).validate(application)
    assert snapshot(example) == before  # a dry run writes nothing, not even .modelci/


def test_the_spark_training_dag_shows_its_application_with_marked_placeholders() -> None:
    files = render(ROOT / "examples" / "churn-spark")

    names = names_for(PROJECT, BRANCH, "churn-spark")
    source = files[names.dag_path("training")]
    application = constants(source)["SPARK_APPLICATION"]
    jsonschema.Draft7Validator(SCHEMA).validate(application)
    spec = application["spec"]
    environment, code = spec["deps"]["archives"]
    assert environment == "s3a://" + PLACEHOLDER_ENVIRONMENT.removeprefix("s3://") + "#environment"
    assert "chosen-by-resolve" in environment
    # Outside CI nothing names the scratch bucket: the code archive's place is marked too.
    assert code.startswith("s3a://<MODELCI_SCRATCH_URI>/") and code.endswith(".tar.gz#code")
    assert spec["mainApplicationFile"] == code.removesuffix(".tar.gz#code") + "/train.py"
    assert spec["arguments"] == ["--rows", "200000"]  # train.args: the DAG names none
    assert spec["image"] == "<MODELCI_RUNTIME_IMAGE>"
    assert "SparkKubernetesOperator(" in source


def test_a_spark_training_dag_with_its_own_entrypoint_renders_it(tmp_path: Path) -> None:
    repo = tmp_path / "churn-spark"
    shutil.copytree(ROOT / "examples" / "churn-spark", repo)
    (repo / "jobs").mkdir()
    (repo / "jobs" / "retrain.py").write_text("print('retrain')\n")
    config = repo / "mlops.yaml"
    text = config.read_text()
    dag = (
        "        - kind: training                    # the same entrypoint as a SparkApplication\n"
    )
    assert text.count(dag) == 1
    own = (
        "        - kind: training\n"
        "          entrypoint: jobs/retrain.py\n"
        '          args: ["--window", "90", "--note", "$${kept}"]\n'
    )
    config.write_text(text.replace(dag, own))

    files = render(repo)

    source = files[names_for(PROJECT, BRANCH, "churn-spark").dag_path("training")]
    spec = constants(source)["SPARK_APPLICATION"]["spec"]
    assert spec["mainApplicationFile"].endswith("/jobs/retrain.py")
    assert spec["arguments"] == ["--window", "90", "--note", "${kept}"]
    assert "training DAG running jobs/retrain.py" in source
