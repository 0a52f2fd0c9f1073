"""A model repository whose requirements conflict with modelci's own: through the real CI
templates, it trains in an environment of its own, modelci's environment is byte-for-byte the
same afterwards, the environment is archived in S3 once and a second pipeline on another
runner unpacks it instead of building, and a batch command runs in it through `modelci
pod-run`, as the generated DAG names it. A missing or corrupt archive stops the pod before the
command runs."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import git
import mlflow
from mlflow import MlflowClient

from tests.e2e.test_faults import job_states, model_repo, pipeline, runs_of
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

    (run,) = runs_of(platform, repo)
    archive = run.data.tags["modelci.env_archive"]
    assert archive.startswith(f"s3://{platform.s3.bucket}/modelci-scratch/envs/py")
    dag = git.Repo(platform.dag_repo).git.show(f"main:{repo.names.dag_path('inference')}")
    assert repr(archive) in dag  # the batch pods run in the archive the run trained in
    code_uri = re.search(r"'(s3://[^']+/code/[0-9a-f]+\.tar\.gz)'", dag).group(1)

    commit_change(repo.path, "README.md", "second push\n", "Second push")
    another_runner = replace(platform, env_cache=tmp_path / "another-runner")
    code, output = pipeline(another_runner, repo, ("modelci-validate", "modelci-train"))

    assert code == 0, output[-6000:]
    assert " unpacked from its archive (" in output and " built (" not in output
    assert len(runs_of(platform, repo)) == 2
    assert {r.data.tags["modelci.env_archive"] for r in runs_of(platform, repo)} == {archive}

    # A batch pod: the code and the environment from S3, the command with the model's pins.
    versions = "import sklearn, numpy, sys; print(sklearn.__version__, numpy.__version__)"
    ran = pod_run(platform, tmp_path / "pod", code_uri, archive, "python", "-c", versions)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == "1.6.1 2.2.6"


def pod_run(
    platform: LocalPlatform, cache: Path, code_uri: str, archive: str, *command: str
) -> subprocess.CompletedProcess[str]:
    """`modelci pod-run` as a batch pod runs it: a machine of its own (an empty cache)."""
    env = {
        **platform.mlflow.env,
        "MODELCI_ENV_CACHE": str(cache),
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
    }
    return subprocess.run(
        [
            str(VENV_BIN / "modelci"),
            "pod-run",
            "--code",
            code_uri,
            "--env",
            archive,
            "--",
            *command,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_a_missing_or_corrupt_environment_archive_stops_the_pod_before_the_command(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    store = platform.s3.client()
    base = f"modelci-scratch/envs/py3.11-{'0' * 20}"
    store.put_object(Bucket=platform.s3.bucket, Key=f"{base}/code.tar.gz", Body=b"")
    corrupt = f"s3://{platform.s3.bucket}/{base}/environment.tar.gz"
    store.put_object(Bucket=platform.s3.bucket, Key=corrupt.split("/", 3)[3], Body=b"garbage")
    missing = corrupt.replace("0" * 20, "1" * 20)
    marker = tmp_path / "ran"
    touch = ("python", "-c", f"open({str(marker)!r}, 'w')")
    code_uri = f"s3://{platform.s3.bucket}/{base}/code.tar.gz"

    gone = pod_run(platform, tmp_path / "pod", code_uri, missing, *touch)
    broken = pod_run(platform, tmp_path / "pod", code_uri, corrupt, *touch)

    assert gone.returncode != 0 and f"archive {missing} does not exist" in gone.stderr
    assert broken.returncode != 0 and f"archive {corrupt} is corrupt" in broken.stderr
    assert "nothing was run" in gone.stderr and "nothing was run" in broken.stderr
    assert "Traceback" not in gone.stderr + broken.stderr
    assert not marker.exists()
    assert not (tmp_path / "pod").exists() or list((tmp_path / "pod").iterdir()) == []
