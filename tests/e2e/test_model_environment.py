"""A model repository whose requirements conflict with modelci's own: through the real CI
templates, it trains in an environment of its own, modelci's environment is byte-for-byte the
same afterwards, the environment is archived in S3 once and a second pipeline on another
runner unpacks it instead of building, a batch command runs in it through `modelci
pod-run`, as the generated DAG names it, and the model server the chart renders from the
committed values (`modelci serve`) runs MLServer in it: the same predictions as in the
training environment, and no version warning, where the runtime image's own MLServer warns. A
missing or corrupt archive stops the pod before the command runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import git
import helm_python as helm
import mlflow
import yaml
from mlflow import MlflowClient

from modelci.config.naming import project_slug_of
from modelci.render.values import chart_dir
from tests.e2e.test_faults import job_states, model_repo, pipeline, runs_of
from tests.harness.lifecycle import PUSH_JOBS, LocalPlatform, commit_change
from tests.harness.mlserver import ModelServer, start_mlserver, start_model_server
from tests.harness.tools import VENV_BIN
from tests.integration.test_serving import example_frame, v2_request

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
    slug = project_slug_of(PROJECT)
    assert archive.startswith(f"s3://{platform.s3.bucket}/modelci-scratch/envs/{slug}/py")
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

    # Serving: the InferenceService Argo CD would apply runs `modelci serve` in the archive.
    model = served_container(platform, repo)
    assert model["command"] == ["modelci", "serve"]
    assert model["args"][:2] == ["--env", archive]
    model_dir = download(platform, model["storageUri"], tmp_path / "mnt-models")
    columns, rows = example_frame(model_dir)
    expected = trained_predictions(platform, tmp_path / "pod", code_uri, archive, model_dir)

    server = serve_like_the_pod(platform, model, model_dir, tmp_path / "serving")
    try:
        answer = server.infer(v2_request(model_dir, columns, rows))
        log = server.process.log_path.read_text(errors="replace")
    finally:
        server.process.stop()
    assert answer.status == 200, answer.body
    assert [bool(value) for value in answer.body["outputs"][0]["data"]] == expected
    assert "serving " in log and f"with the environment {archive}" in log
    assert "InconsistentVersionWarning" not in log

    # The runtime image's own MLServer (another scikit-learn) serves the same bytes with a warning.
    stock = start_mlserver(tmp_path / "stock", "stock", model_dir)
    try:
        stock.infer(v2_request(model_dir, columns, rows))
        stock_log = stock.process.log_path.read_text(errors="replace")
    finally:
        stock.process.stop()
    assert "InconsistentVersionWarning" in stock_log


def served_container(platform: LocalPlatform, repo) -> dict:
    """The predictor's model container of the InferenceService the chart renders from the
    values the pipeline committed to the GitOps repo."""
    text = git.Repo(platform.gitops_repo).git.show(f"main:{repo.names.values_path}")
    values = yaml.safe_load(text)
    with helm.Chart.load(chart_dir()) as chart:
        manifests = chart.render(chart.merge_values(values), name="churn", namespace="ml")
    (isvc,) = [
        document
        for path, manifest in manifests.items()
        if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(manifest)
        if document and document["kind"] == "InferenceService"
    ]
    return isvc["spec"]["predictor"]["model"]


def download(platform: LocalPlatform, uri: str, target: Path) -> Path:
    """What KServe's storage initializer does with `storageUri` before the server starts."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    client = platform.s3.client()
    for item in client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")["Contents"]:
        path = target / item["Key"].removeprefix(f"{prefix}/")
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, item["Key"], str(path))
    return target


def trained_predictions(
    platform: LocalPlatform, cache: Path, code_uri: str, archive: str, model_dir: Path
) -> list[bool]:
    """What the model predicts for its input example in the environment it was trained in."""
    script = (
        "import json, mlflow.pyfunc, pandas as pd; "
        f"split = json.load(open({str(model_dir / 'serving_input_example.json')!r}))"
        "['dataframe_split']; "
        f"model = mlflow.pyfunc.load_model({str(model_dir)!r}); "
        "frame = pd.DataFrame(split['data'], columns=split['columns']); "
        "print(json.dumps([bool(v) for v in model.predict(frame)]))"
    )
    ran = pod_run(platform, cache, code_uri, archive, "python", "-c", script)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout.strip().splitlines()[-1])


def serve_like_the_pod(
    platform: LocalPlatform, model: dict, model_dir: Path, workdir: Path
) -> ModelServer:
    """The container's command and S3 settings, run here: a machine of its own (an empty
    environment cache); `--model-dir` names the local copy instead of the pod's /mnt/models."""
    env = {item["name"]: item["value"] for item in model["env"]}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": platform.s3.access_key,  # the Secret envFrom names
            "AWS_SECRET_ACCESS_KEY": platform.s3.secret_key,
            "MODELCI_ENV_CACHE": str(workdir / "env-cache"),
            "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
        }
    )
    name = model["args"][model["args"].index("--name") + 1]
    argv = [str(VENV_BIN / model["command"][0]), *model["command"][1:], *model["args"]]
    return start_model_server(
        workdir, name, lambda _dir: [*argv, "--model-dir", str(model_dir)], env
    )


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
