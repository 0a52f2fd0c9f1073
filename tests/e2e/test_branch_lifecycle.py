"""The real CI templates, run by gitlab-ci-local in a model repository made from
`examples/churn`, against real MLflow, S3, git remotes and Airflow: a push to a feature branch
deploys the branch environment; its stop job tears it down and touches nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest
from mlflow import MlflowClient
from ruamel.yaml import YAML

from modelci.config.naming import names_for
from tests.harness.airflow import BRANCHES_BUNDLE, AirflowHome, json_output, parse_dag_folder
from tests.harness.argocd import generator_params, matches_legacy, render_template
from tests.harness.lifecycle import (
    PUSH_JOBS,
    LocalPlatform,
    make_model_repo,
    run_pipeline,
)
from tests.harness.tools import ROOT

PROJECT = "ml/churn"
BRANCH = "feature/Add-XGB"


def tree(bare: Path) -> dict[str, str]:
    commit = git.Repo(bare).commit("main")
    return {
        blob.path: blob.data_stream.read().decode()
        for blob in commit.tree.traverse()
        if blob.type == "blob"
    }


def commit_count(bare: Path) -> int:
    return int(git.Repo(bare).git.rev_list("--count", "main"))


def ok(result, *jobs: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    for job in jobs:
        assert f"PASS  {job}" in output, output[-6000:]
    return output


@pytest.fixture
def model_repo(tmp_path: Path) -> Path:
    return make_model_repo(tmp_path / "churn", project=PROJECT, branch=BRANCH)


def test_push_deploys_the_branch_environment_and_stop_removes_it(
    platform: LocalPlatform, model_repo: Path, tmp_path: Path, s3
) -> None:
    variables = platform.ci_variables()
    commit = git.Repo(model_repo).head.commit.hexsha
    names = names_for(PROJECT, BRANCH, "churn")
    before_dags, before_gitops = tree(platform.dag_repo), tree(platform.gitops_repo)

    output = ok(run_pipeline(model_repo, variables), *PUSH_JOBS)

    # MLflow: one run, tagged with its provenance and the gate result.
    client = MlflowClient(platform.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(names.experiment)
    # Other tests of the session may train project ml/churn too: this pipeline's is the one.
    (run,) = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`modelci.commit` = '{commit}' and tags.`modelci.branch` = '{BRANCH}'",
    )
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert tags["modelci.project"] == PROJECT
    assert tags["modelci.branch"] == BRANCH
    assert tags["modelci.commit"] == commit
    assert tags["modelci.environment"] == names.environment
    assert tags["modelci.gate"] == "passed"
    assert run.data.metrics["accuracy"] >= 0.7

    # DAG bundle repo: the branch's DAG files, one commit, the neighbours untouched.
    dags = tree(platform.dag_repo)
    written = {path: text for path, text in dags.items() if path not in before_dags}
    assert sorted(written) == sorted([names.dag_path("inference"), names.dag_path("monitoring")])
    assert all(dags[path] == text for path, text in before_dags.items())
    assert commit_count(platform.dag_repo) == 2
    message = git.Repo(platform.dag_repo).commit("main").message
    assert f"Project: {PROJECT}" in message and f"Branch: {BRANCH}" in message
    for text in written.values():
        assert f"Commit:     {commit}" in text
        assert run.info.run_id in text

    # GitOps repo: values and generator file; storageUri is the real model directory in S3.
    gitops = tree(platform.gitops_repo)
    config = json.loads(gitops[names.app_config_path])
    assert config["namespace"] == names.namespace
    assert config["appName"] == names.app_name
    values_text = gitops[names.values_path]
    storage_uri = next(
        line.split(": ", 1)[1]
        for line in values_text.splitlines()
        if line.startswith("storageUri:")
    )
    bucket, _, key = storage_uri.removeprefix("s3://").partition("/")
    assert s3.client().head_object(Bucket=bucket, Key=f"{key}/MLmodel")
    assert f"name: {names.k8s_name}" in values_text

    # Argo CD: the ApplicationSet's generator finds exactly this config.json, and the
    # Application it makes reads the chart of this library and the values.yaml beside it.
    appset = YAML(typ="safe").load((ROOT / "argocd" / "applicationset.yaml").read_text())
    (git_generator,) = [g["git"] for g in appset["spec"]["generators"]]
    (pattern,) = [item["path"] for item in git_generator["files"]]
    found = [path for path in gitops if matches_legacy(pattern, path)]
    assert found == [names.app_config_path]
    params = generator_params(found[0], config)
    application = render_template(appset["spec"]["template"], params, tmp_path)
    chart_source, values_source = application["spec"]["sources"]
    (values_file,) = chart_source["helm"]["valueFiles"]
    assert values_file.removeprefix(f"${values_source['ref']}/") in gitops
    assert (ROOT / chart_source["path"] / "Chart.yaml").is_file()
    assert application["spec"]["destination"]["namespace"] == names.namespace

    # Links in the job log and in the dotenv that sets the GitLab environment URL; no secret.
    assert f"runs/{run.info.run_id}" in output
    assert f"http://airflow.localhost:8080/dags/{names.dag_id('inference')}" in output
    model_api = f"http://{names.k8s_name}-{names.namespace}.models.localhost/v2/models/"
    assert model_api in output
    dotenv = model_repo / ".gitlab-ci-local/artifacts/modelci-report/.modelci/report.env"
    assert dotenv.read_text().startswith(f"MODELCI_ENVIRONMENT_URL={model_api}")
    junit = model_repo / ".gitlab-ci-local/artifacts/modelci-gate/.modelci/gate-report.xml"
    assert 'name="accuracy &gt;= 0.7"' in junit.read_text()
    assert not [secret for secret in s3.secret_keys if secret in output]
    assert s3.identity("branches").access_key not in output

    # The DAGs import in real Airflow 3 and a GitDagBundle on the bare repo lists them.
    require_airflow = AirflowHome(tmp_path / "airflow", platform.dag_repo)
    try:
        checkout = tmp_path / "dag-checkout"
        git.Repo.clone_from(platform.dag_repo.as_uri(), checkout)
        parsed = parse_dag_folder(checkout / "dags" / names.project_slug, tmp_path / "bag.json")
        assert parsed["import_errors"] == {}
        assert set(parsed["dags"]) == {names.dag_id("inference"), names.dag_id("monitoring")}
        require_airflow.wait_for_database()
        require_airflow.airflow("dags", "reserialize", "-B", BRANCHES_BUNDLE)
        listed = json_output(require_airflow.airflow("dags", "list", "-o", "json"))
        assert names.dag_id("inference") in {row["dag_id"] for row in listed}
    finally:
        require_airflow.close()

    # Re-running the deploy jobs changes nothing: no new commit anywhere.
    counts = commit_count(platform.dag_repo), commit_count(platform.gitops_repo)
    ok(
        run_pipeline(model_repo, variables, jobs=["modelci-deploy-batch", "modelci-deploy-online"]),
        "modelci-deploy-batch",
        "modelci-deploy-online",
    )
    assert (commit_count(platform.dag_repo), commit_count(platform.gitops_repo)) == counts

    # The stop job removes the environment and nothing else; a second stop is a no-op.
    scratch = f"modelci-scratch/{names.s3_prefix}"
    assert s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=scratch)["KeyCount"] > 0
    ok(run_pipeline(model_repo, variables, jobs=["modelci-stop"]), "modelci-stop")
    assert tree(platform.dag_repo) == before_dags
    assert tree(platform.gitops_repo) == before_gitops
    assert s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=scratch)["KeyCount"] == 0
    counts = commit_count(platform.dag_repo), commit_count(platform.gitops_repo)
    ok(run_pipeline(model_repo, variables, jobs=["modelci-stop"]), "modelci-stop")
    assert (commit_count(platform.dag_repo), commit_count(platform.gitops_repo)) == counts
