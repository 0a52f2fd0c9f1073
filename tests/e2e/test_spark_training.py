"""A model that trains on Spark: the CI train job runs its entrypoint with real local Spark
(pyspark, Java) in the model's own environment, the run is gated and resolved like any other,
and the training DAG that deploy-batch commits submits a SparkApplication that the Spark
Operator's CRD schema accepts and that a real Airflow imports. (A Spark Operator and its
Kubernetes cannot run here: the application itself is not submitted.) The run is a Spark ML
model (mlflow.spark): a config that would serve it is refused by resolve and by a stand's
deploy, before anything is deployed."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import git
import jsonschema
from mlflow import MlflowClient

from modelci.config.naming import names_for
from tests.e2e.test_faults import ModelRepo, modelci
from tests.e2e.test_promotion import ok
from tests.harness.airflow import parse_dag_folder
from tests.harness.gitremotes import STANDS_BRANCH, files_on
from tests.harness.lifecycle import ROOT, LocalPlatform, commit_change, make_model_repo

PROJECT = "ml/spark-churn"
MODEL = "churn-spark"
BRANCH = "feature/spark"
SCHEMA = json.loads(
    (ROOT / "tests/schemas/spark-operator/sparkapplication-v1beta2.strict.json").read_text()
)


def test_a_spark_model_trains_with_local_spark_is_gated_resolved_and_gets_a_spark_dag(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    path = make_model_repo(
        tmp_path / "model", project=PROJECT, branch=BRANCH, example=ROOT / "examples/churn-spark"
    )
    repo = ModelRepo(path, PROJECT, BRANCH)
    names = names_for(PROJECT, BRANCH, MODEL)

    trained = ok(modelci(platform, repo, "train"))
    assert f"{MODEL}: Spark training with local[2] in this job" in trained
    ok(modelci(platform, repo, "gate"))
    resolved = ok(modelci(platform, repo, "resolve"))
    assert f"Spark main file of {MODEL}: s3://" in resolved  # staged with the code
    ok(modelci(platform, repo, "deploy-batch"))

    client = MlflowClient(platform.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(names.experiment)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["master"] == "local[2]"  # Spark ran in the job, as configured
    assert run.data.params["rows"] == "4000"  # the CI sample (spark.ci.args)
    assert run.data.metrics["accuracy"] >= 0.7
    assert run.data.tags["modelci.gate"] == "passed"
    assert run.data.tags["modelci.branch"] == BRANCH
    assert run.info.run_id in resolved

    source = git.Repo(platform.dag_repo).git.show(f"main:{names.dag_path('training')}")
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
    }
    application = constants["SPARK_APPLICATION"]
    jsonschema.Draft7Validator(SCHEMA).validate(application)
    archive = run.data.tags["modelci.env_archive"]
    assert application["spec"]["deps"]["archives"][0] == (
        f"s3a://{archive.removeprefix('s3://')}#environment"
    )
    main_file = application["spec"]["mainApplicationFile"]
    bucket, _, key = main_file.removeprefix("s3a://").partition("/")
    stored = platform.s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == (path / "train.py").read_bytes()

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "training.py").write_text(source)
    parsed = parse_dag_folder(folder, tmp_path / "parsed.json")
    assert parsed["import_errors"] == {}
    assert list(parsed["dags"]) == [names.dag_id("training")]
    # What the task submits, once Airflow has rendered its fields as a task run does: the
    # application exactly as written (literal(): no Jinja reached it).
    task = parsed["dags"][names.dag_id("training")]["tasks"]["training"]
    assert task["operator"] == "SparkKubernetesOperator"
    assert task["spark_application"] == application
    assert task["namespace"] == names.namespace

    # The driver as the application starts it (its env, the model's environment), here on
    # local Spark: a run of its own in the model's experiment, tagged as a CI training.
    driver_env = {item["name"]: item["value"] for item in application["spec"]["driver"]["env"]}
    environment = platform.env_cache / archive.rstrip("/").split("/")[-2]
    scheduled = subprocess.run(
        [
            str(environment / "bin" / "python"),
            "train.py",
            "--rows",
            "2000",
        ],
        cwd=path,
        env={
            **driver_env,
            "PYTHONPATH": str(path),
            "MLFLOW_TRACKING_URI": platform.mlflow.tracking_uri,  # the pod's name for it
            **{k: v for k, v in platform.mlflow.env.items() if k.startswith("AWS_")},
            "MLFLOW_S3_ENDPOINT_URL": platform.s3.endpoint_url,
            "PYSPARK_SUBMIT_ARGS": "--master local[1] pyspark-shell",
            "PATH": os.environ["PATH"],
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert scheduled.returncode == 0, scheduled.stderr[-3000:]
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.info.run_id for r in runs[:1]] == [run.info.run_id] and len(runs) == 2
    tags = runs[1].data.tags
    assert tags["modelci.branch"] == BRANCH and tags["modelci.model"] == MODEL
    assert tags["modelci.commit"] == run.data.tags["modelci.commit"]
    assert "modelci.gate" not in tags  # not deployed until a pipeline gates it
    assert client.get_run(run.info.run_id).data.metrics == run.data.metrics

    refuse_to_serve_it(platform, path, run.info.run_id)


def scratch_keys(platform: LocalPlatform, prefix: str) -> list[str]:
    listed = platform.s3.client().list_objects_v2(
        Bucket=platform.s3.bucket, Prefix=f"modelci-scratch/{prefix}"
    )
    return [item["Key"] for item in listed.get("Contents", [])]


def refuse_to_serve_it(platform: LocalPlatform, path: Path, run_id: str) -> None:
    """The same Spark ML model, under a config that would serve it online: resolve (the first
    deploy step that reads its MLmodel) and a stand's deploy refuse it, writing nothing."""
    example = (path / "mlops.yaml").read_text()
    served = example.replace("flavor: spark", "flavor: sklearn") + "    online: {enabled: true}\n"
    commit_change(path, "mlops.yaml", served, "Serve the model online")
    names = names_for(PROJECT, BRANCH, MODEL)
    staged = scratch_keys(platform, f"branches/{names.project_slug}/")
    state = sorted(p.name for p in (path / ".modelci" / MODEL).iterdir())

    refused = modelci(platform, ModelRepo(path, PROJECT, BRANCH), "resolve")

    assert refused.returncode == 1, refused.stdout + refused.stderr
    error = refused.stderr
    assert error.startswith(f"modelci resolve: error: model {MODEL} is a Spark ML model (s3://")
    assert "/MLmodel has the flavors python_function, spark)" in error
    assert "online serving (online.enabled, MLServer's mlflow runtime) would load it" in error
    assert "mlflow.sklearn.log_model" in error  # the fix
    assert error.rstrip().endswith("Nothing was deployed")
    assert sorted(p.name for p in (path / ".modelci" / MODEL).iterdir()) == state
    assert scratch_keys(platform, f"branches/{names.project_slug}/") == staged

    checkout = git.Repo(path)
    checkout.git.checkout("main")
    checkout.git.merge("--no-ff", "-q", "-m", f"Merge {BRANCH}", BRANCH)
    main = ModelRepo(path, PROJECT, "main")
    refused = modelci(
        platform, main, "deploy-version", "--model", MODEL, "--stand", "staging",
        "--run-id", run_id,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.startswith(
        f"modelci deploy-version: error: model {MODEL} is a Spark ML model"
    )
    stand = names_for(PROJECT, "main", MODEL, stand="staging")
    client = MlflowClient(platform.mlflow.tracking_uri)
    assert "staging" not in client.get_registered_model(stand.registered_model).aliases
    assert files_on(platform.gitops_repo, STANDS_BRANCH) == set()
    assert files_on(platform.dag_repo, STANDS_BRANCH) == set()
    assert f"{MODEL} model: copied from " in refused.stdout  # the stand's copy was read ...
    assert scratch_keys(platform, f"stands/{stand.project_slug}/") == []  # ... and removed
