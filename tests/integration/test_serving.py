"""The model a pipeline produces is servable the way KServe serves `modelFormat: mlflow`.

`modelci train`, `gate` and `resolve` run as CI runs them, against the real MLflow server and
S3; the Helm values are built for the resolved storage URI, and the `storageUri` in those values
(what KServe reads) is downloaded, as KServe's storage initializer does, and served by MLServer
with mlserver-mlflow from its own virtualenv (the runtime image's packages, not the trainer's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from modelci.config.mlops import load_config
from modelci.config.naming import names_for
from modelci.config.settings import Pipeline, Settings
from modelci.render.values import build_values, validate_values
from modelci.systems.s3 import S3Store
from tests.harness.lifecycle import EXAMPLE_REPO
from tests.harness.mlflowserver import MlflowServer
from tests.harness.mlserver import ModelServer, start_mlserver
from tests.harness.tools import VENV_BIN, require

MODEL = "churn"
PROJECT = "ml/churn"
COMMAND_TIMEOUT_SECONDS = 240
# MLflow signature column types -> Open Inference Protocol datatypes.
V2_DATATYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
}
PANDAS = {"content_type": "pd"}


@dataclass(frozen=True)
class ServedModel:
    server: ModelServer
    values: dict[str, Any]
    model_dir: Path
    timings: dict[str, float]


def job_env(mlflow_server: MlflowServer, branch: str) -> dict[str, str]:
    """A CI job's environment: the platform variables and GitLab's CI_* ones, nothing inherited
    that could point the job at another MLflow or S3."""
    prefixes = ("MLFLOW_", "AWS_", "CI_", "MODELCI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(mlflow_server.env)
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "AWS_EC2_METADATA_DISABLED": "true",
            "CI_PROJECT_PATH": PROJECT,
            "CI_COMMIT_REF_NAME": branch,
            "CI_COMMIT_SHA": uuid.uuid4().hex + uuid.uuid4().hex[:8],
            "CI_PIPELINE_ID": "4242",
            "MODELCI_ARTIFACTS_DESTINATION": mlflow_server.artifacts_destination,
            "MODELCI_CLUSTER_S3_ENDPOINT": mlflow_server.s3.endpoint_url,
            "MODELCI_INGRESS_DOMAIN": "models.localhost",
            "MODELCI_URL_SCHEME": "http",
            # The online path only, as with the component's `batch: false`: resolve stages no
            # code for batch pods (there is no scratch URI and no real commit here).
            "MODELCI_BATCH": "false",
        }
    )
    return env


def modelci(step: str, repo: Path, env: dict[str, str], timings: dict[str, float]) -> str:
    started = time.monotonic()
    result = subprocess.run(
        [str(require(VENV_BIN / "modelci")), step, "--config", str(repo / "mlops.yaml")],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    timings[f"modelci {step}"] = time.monotonic() - started
    assert result.returncode == 0, (
        f"modelci {step} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}"
    )
    return result.stdout


def values_for(repo: Path, env: dict[str, str], resolved: dict[str, Any]) -> dict[str, Any]:
    """The Helm values deploy-online would write for the resolved run."""
    config = load_config(repo / "mlops.yaml")
    model = next(m for m in config.models if m.name == MODEL)
    pipeline = Pipeline.from_env(env)
    names = names_for(pipeline.project, pipeline.branch, model.name)
    values = build_values(
        model,
        names,
        Settings.from_env(env),
        storage_uri=resolved["storage_uri"],
        run_id=resolved["run_id"],
        model_version=None,
        pipeline=pipeline,
    )
    validate_values(values, source="values built by test_serving")
    return values


@pytest.fixture(scope="module")
def served(
    mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedModel]:
    work = tmp_path_factory.mktemp("serving")
    repo = work / "churn"
    shutil.copytree(EXAMPLE_REPO, repo, ignore=shutil.ignore_patterns("__pycache__", "mlruns"))
    env = job_env(mlflow_server, branch=f"serve-{uuid.uuid4().hex[:8]}")
    timings: dict[str, float] = {}
    for step in ("train", "gate", "resolve"):
        modelci(step, repo, env, timings)
    resolved = json.loads((repo / ".modelci" / MODEL / "resolve.json").read_text())
    values = values_for(repo, env, resolved)

    started = time.monotonic()
    model_dir = work / "mnt-models"  # what KServe's storage initializer fills
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):
            patch.setenv(name, env[name])
        store = S3Store(mlflow_server.s3.endpoint_url, mlflow_server.s3.region)
        store.download_prefix(values["storageUri"], model_dir)
    timings["download storageUri"] = time.monotonic() - started

    server = start_mlserver(work / "mlserver", values["name"], model_dir)
    timings["MLServer ready"] = server.startup_seconds
    try:
        yield ServedModel(server, values, model_dir, timings)
    finally:
        if server.process is not None:
            server.process.stop()


def signature_inputs(model_dir: Path) -> list[dict[str, str]]:
    mlmodel = YAML(typ="safe").load((model_dir / "MLmodel").read_text(encoding="utf-8"))
    return json.loads(mlmodel["signature"]["inputs"])


def example_frame(model_dir: Path) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the input example MLflow saved with the model."""
    example = json.loads((model_dir / "serving_input_example.json").read_text(encoding="utf-8"))
    split = example["dataframe_split"]
    return split["columns"], split["data"]


def v2_request(model_dir: Path, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """A V2 (Open Inference Protocol) request with one input per column, read as a DataFrame."""
    types = {spec["name"]: spec["type"] for spec in signature_inputs(model_dir)}
    return {
        "parameters": PANDAS,
        "inputs": [
            {
                "name": column,
                "shape": [len(rows)],
                "datatype": V2_DATATYPES[types.get(column, "double")],
                "data": [row[index] for row in rows],
            }
            for index, column in enumerate(columns)
        ],
    }


def offline_predictions(model_dir: Path, columns: list[str], rows: list[list[Any]]) -> list[bool]:
    """What the downloaded model predicts when loaded with the trainer's own MLflow."""
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(str(model_dir))
    return [bool(value) for value in model.predict(pd.DataFrame(rows, columns=columns))]


def is_booleanish(value: Any) -> bool:
    return isinstance(value, bool) or value in (0, 1)


def test_pipeline_model_is_served_by_kserve_mlflow_runtime(served: ServedModel) -> None:
    model_dir, values = served.model_dir, served.values
    assert values["storageUri"].startswith("s3://")
    assert (model_dir / "MLmodel").is_file()
    columns, rows = example_frame(model_dir)
    assert len(rows) >= 2

    started = time.monotonic()
    answer = served.server.infer(v2_request(model_dir, columns, rows))
    served.timings["first infer"] = time.monotonic() - started

    assert answer.status == 200, answer.body
    assert answer.body["model_name"] == values["name"]
    (output,) = answer.body["outputs"]
    assert output["datatype"] == "BOOL", output
    assert output["shape"][0] == len(rows)
    assert len(output["data"]) == len(rows)
    assert all(is_booleanish(value) for value in output["data"]), output
    # The runtime image serves the same model the trainer logged, with the same answers.
    served_predictions = [bool(value) for value in output["data"]]
    assert served_predictions == offline_predictions(model_dir, columns, rows)
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in served.timings.items()))


def test_request_with_a_wrong_column_is_refused_and_the_server_keeps_serving(
    served: ServedModel,
) -> None:
    model_dir = served.model_dir
    columns, rows = example_frame(model_dir)
    wrong = ["not_a_feature", *columns[1:]]

    answer = served.server.infer(v2_request(model_dir, wrong, rows))

    assert 400 <= answer.status < 600, answer
    assert isinstance(answer.body, dict) and answer.body.get("error"), answer.body
    assert columns[0] in answer.body["error"], answer.body["error"]
    assert served.server.process is not None and not served.server.process.exited()
    again = served.server.infer(v2_request(model_dir, columns, rows))
    assert again.status == 200, again.body
