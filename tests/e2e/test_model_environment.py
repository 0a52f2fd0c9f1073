"""A model repository whose requirements conflict with modelci's own: through the real CI
templates, it trains in an environment of its own, modelci's environment is byte-for-byte the
same afterwards, and a second pipeline reuses the environment the first one built."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from tests.e2e.test_faults import job_states, model_repo, pipeline
from tests.harness.lifecycle import PUSH_JOBS, LocalPlatform, commit_change
from tests.harness.tools import VENV_BIN

# scikit-learn, numpy and ruamel.yaml at versions modelci's environment does not have
# (modelci itself needs ruamel.yaml >= 0.18).
CONFLICTING_REQUIREMENTS = """\
mlflow==3.17.2
scikit-learn==1.6.1
skops==0.16.0
pandas==3.1.1
numpy==2.2.6
ruamel.yaml==0.17.40
"""
PROJECT = "ml/pinned-elsewhere"


def freeze() -> str:
    return subprocess.run(
        [str(VENV_BIN / "python"), "-m", "pip", "freeze", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def model_requirements(platform: LocalPlatform, project: str) -> list[str]:
    """The requirements MLflow recorded with the model the pipeline's run logged."""
    client = MlflowClient(platform.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(f"{project}/churn")
    (run,) = client.search_runs([experiment.experiment_id])
    (logged,) = client.search_logged_models([experiment.experiment_id])
    assert logged.source_run_id == run.info.run_id
    mlflow.set_tracking_uri(platform.mlflow.tracking_uri)
    path = mlflow.pyfunc.get_model_dependencies(f"models:/{logged.model_id}")
    return Path(path).read_text(encoding="utf-8").split()


def test_conflicting_pins_train_in_their_own_environment(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    platform = replace(platform, env_cache=tmp_path / "model-envs")  # built here, not before
    repo = model_repo(tmp_path, PROJECT, files={"requirements.txt": CONFLICTING_REQUIREMENTS})
    before = freeze()

    code, output = pipeline(platform, repo)

    assert code == 0, output[-6000:]
    assert all(job_states(output).get(job) == "PASS" for job in PUSH_JOBS), job_states(output)
    assert freeze() == before, "the model's requirements changed modelci's own environment"
    recorded = model_requirements(platform, PROJECT)
    assert "scikit-learn==1.6.1" in recorded
    assert "numpy==2.2.6" in recorded
    assert "model environment py" in output and " built (" in output

    commit_change(repo.path, "README.md", "second push\n", "Second push")
    code, output = pipeline(platform, repo, ("modelci-validate", "modelci-train"))

    assert code == 0, output[-6000:]
    assert " reused (" in output and " built (" not in output
