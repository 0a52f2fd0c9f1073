"""After the merge: the branch's validated model goes through the stands without retraining,
later stands take exactly what the stand before serves, a rollback goes back, and a chosen
version can be deployed; every move is audited. Real MLflow, S3 and git remotes; the steps
run as the CI jobs run them (`modelci` with a job's variables)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import git
from mlflow import MlflowClient

from modelci.config.naming import names_for
from tests.e2e.test_faults import ModelRepo, model_repo, modelci, shared_state
from tests.harness.gitremotes import STANDS_BRANCH, files_on
from tests.harness.lifecycle import LocalPlatform, commit_change
from tests.integration.fake_gitlab import running

PROJECT = "ml/promoted"
MODEL = "churn"
REGISTERED = names_for(PROJECT, "main", MODEL).registered_model
FEATURE_STEPS = ("train", "gate", "resolve", "deploy-batch", "deploy-online")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def push_branch(platform: LocalPlatform, repo: ModelRepo, branch: str) -> ModelRepo:
    """A feature branch's pipeline: its environment is up, its run passed the gate."""
    git.Repo(repo.path).git.checkout("-B", branch)
    commit_change(repo.path, f"{branch.replace('/', '-')}.txt", branch, f"work on {branch}")
    on_branch = ModelRepo(repo.path, repo.project, branch)
    for step in FEATURE_STEPS:
        ok(modelci(platform, on_branch, step))
    return on_branch


def on_main(repo: ModelRepo) -> ModelRepo:
    """The default branch's pipeline after the merge (a merge commit of the branch)."""
    checkout = git.Repo(repo.path)
    branch = checkout.active_branch.name
    checkout.git.checkout("main")
    checkout.git.merge("--no-ff", "-q", "-m", f"Merge {branch}", branch)
    return ModelRepo(repo.path, repo.project, "main")


def tree(bare: Path) -> set[str]:
    """The feature environments' branch."""
    return files_on(bare)


def stands_tree(bare: Path) -> set[str]:
    return files_on(bare, STANDS_BRANCH)


def alias(platform: LocalPlatform, stand: str) -> str | None:
    model = MlflowClient(platform.mlflow.tracking_uri).get_registered_model(REGISTERED)
    return model.aliases.get(stand)


def version_tags(platform: LocalPlatform, version: str) -> dict[str, str]:
    client = MlflowClient(platform.mlflow.tracking_uri)
    return dict(client.get_model_version(REGISTERED, version).tags)


def run_count(platform: LocalPlatform) -> int:
    client = MlflowClient(platform.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(f"{PROJECT}/{MODEL}")
    return len(client.search_runs([experiment.experiment_id]))


def test_merge_promote_rollback_and_a_chosen_version(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, PROJECT)
    first = push_branch(platform, repo, "feature/first")
    branch_names = first.names
    assert branch_names.values_path in tree(platform.gitops_repo)
    runs_before = run_count(platform)

    # The merge: staging serves the branch's run as version 1; the branch's environment goes.
    main = on_main(first)
    output = ok(
        modelci(platform, main, "promote", "--branch", "feature/first", GITLAB_USER_LOGIN="lead")
    )
    staging = names_for(PROJECT, "main", MODEL, stand="staging")
    assert alias(platform, "staging") == "1"
    assert run_count(platform) == runs_before  # no retraining
    assert {staging.values_path, staging.app_config_path} <= stands_tree(platform.gitops_repo)
    assert staging.dag_path("inference") in stands_tree(platform.dag_repo)
    assert staging.values_path not in tree(platform.gitops_repo)
    stand_dag = git.Repo(platform.dag_repo).git.show(
        f"{STANDS_BRANCH}:{staging.dag_path('inference')}"
    )
    # The run's environment archive, copied to the stand's own prefix (never rebuilt).
    assert f"/modelci-scratch/{staging.s3_prefix}envs/py" in stand_dag
    assert branch_names.values_path not in tree(platform.gitops_repo)
    assert not any(
        p.startswith(f"dags/{branch_names.project_slug}/{branch_names.environment}/")
        for p in tree(platform.dag_repo)
    )
    tags = version_tags(platform, "1")
    assert tags["modelci.stand.staging.action"] == "promote"
    assert tags["modelci.stand.staging.by"] == "lead"
    assert tags["modelci.stand.staging.commit"] == main.commit
    assert "modelci.stand.staging.previous_version" not in tags  # staging served nothing
    assert "staging now serves version 1" in output
    # One line per write: the stand's files (one commit), the branch's environment removed.
    for name, lines in repo_lines(output, platform).items():
        stand, stop = lines
        assert re.fullmatch(r"committed [0-9a-f]{12}", stand), (name, lines)
        assert re.fullmatch(r"\S+/b-feature-first-\w+ removed in [0-9a-f]{12}", stop), lines
    assert "already up to date" not in output
    values = git.Repo(platform.gitops_repo).git.show(f"{STANDS_BRANCH}:{staging.values_path}")
    assert "modelVersion: '1'" in values or 'modelVersion: "1"' in values

    # Production takes exactly what staging serves.
    ok(modelci(platform, main, "promote", "--stand", "production"))
    assert alias(platform, "production") == "1"
    production = names_for(PROJECT, "main", MODEL, stand="production")
    assert production.values_path in stands_tree(platform.gitops_repo)

    # A second branch: staging moves on to version 2, then production.
    second = push_branch(platform, on_branch_from_main(repo), "feature/second")
    main = on_main(second)
    ok(modelci(platform, main, "promote", "--branch", "feature/second"))
    ok(modelci(platform, main, "promote", "--stand", "production"))
    assert (alias(platform, "staging"), alias(platform, "production")) == ("2", "2")
    assert version_tags(platform, "2")["modelci.stand.production.previous_version"] == "1"

    # Rollback of production: back to what it served before, recorded.
    before = shared_state(platform)
    output = ok(modelci(platform, main, "rollback", "--stand", "production"))
    assert alias(platform, "production") == "1"
    assert "production now serves version 1 (was version 2)" in output
    tags = version_tags(platform, "1")
    assert tags["modelci.stand.production.action"] == "rollback"
    assert tags["modelci.stand.production.previous_version"] == "2"
    assert shared_state(platform).gitops_refs != before.gitops_refs  # values rewritten
    values = git.Repo(platform.gitops_repo).git.show(f"{STANDS_BRANCH}:{production.values_path}")
    assert "modelVersion: '1'" in values or 'modelVersion: "1"' in values

    # A chosen version from the form: version 2 back on production, audited as a deploy.
    ok(
        modelci(
            platform,
            main,
            "deploy-version",
            "--model",
            MODEL,
            "--stand",
            "production",
            MODELCI_DEPLOY_VERSION="2",
        )
    )
    assert alias(platform, "production") == "2"
    assert version_tags(platform, "2")["modelci.stand.production.action"] == "deploy"
    # The same version again: nothing changes, and each repo says so once.
    again = ok(
        modelci(platform, main, "deploy-version", "--model", MODEL, "--stand", "production",
                "--version", "2")
    )  # fmt: skip
    assert "production already serves version 2" in again
    assert set(map(tuple, repo_lines(again, platform).values())) == {
        ("already up to date, no commit",)
    }
    # Staging is untouched by all of this.
    assert alias(platform, "staging") == "2"


def repo_lines(output: str, platform: LocalPlatform) -> dict[str, list[str]]:
    """What follows `<repo URL>: ` on each line that starts with one, per shared repo."""
    return {
        bare.name: [
            line.removeprefix(f"{bare.as_uri()}: ")
            for line in output.splitlines()
            if line.startswith(f"{bare.as_uri()}: ")
        ]
        for bare in (platform.dag_repo, platform.gitops_repo)
    }


def on_branch_from_main(repo: ModelRepo) -> ModelRepo:
    git.Repo(repo.path).git.checkout("main")
    return ModelRepo(repo.path, repo.project, "main")


def test_what_cannot_be_promoted_is_refused_and_nothing_is_written(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, "ml/refused")
    main = ModelRepo(repo.path, repo.project, "main")
    before = shared_state(platform)

    no_run = modelci(platform, main, "promote", "--branch", "feature/never-trained")
    into_empty = modelci(platform, main, "promote", "--stand", "production")
    first_stand = modelci(platform, main, "promote", "--stand", "staging")  # after a merge
    unknown = modelci(platform, main, "promote", "--stand", "qa")
    nothing_served = modelci(platform, main, "rollback", "--stand", "production")
    missing = modelci(
        platform, main, "deploy-version", "--model", MODEL, "--stand", "staging", "--version", "7"
    )
    no_token = modelci(platform, main, "promote")

    assert no_run.returncode == 1 and "no run to serve" in no_run.stderr
    assert "feature/never-trained" in no_run.stderr
    assert into_empty.returncode == 1
    assert "staging serves no version of ml-refused" in into_empty.stderr
    assert first_stand.returncode == 1 and "pass --branch" in first_stand.stderr
    assert unknown.returncode == 1 and "stand 'qa' is not in mlops.yaml" in unknown.stderr
    assert nothing_served.returncode == 1 and "nothing to roll back" in nothing_served.stderr
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert no_token.returncode == 1 and "pass --branch" in no_token.stderr
    assert shared_state(platform) == before


def test_rollback_without_history_and_a_failed_gate_override(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, "ml/override")
    branch = push_branch(platform, repo, "feature/only")
    main = on_main(branch)
    registered = names_for("ml/override", "main", MODEL).registered_model
    ok(modelci(platform, main, "promote", "--branch", "feature/only"))
    client = MlflowClient(platform.mlflow.tracking_uri)
    run_id = client.get_model_version(registered, "1").run_id
    client.set_tag(run_id, "modelci.gate", "failed")  # as if the gate had refused it
    before = shared_state(platform)

    first_only = modelci(platform, main, "rollback", "--stand", "staging")
    refused = modelci(
        platform,
        main,
        "deploy-version",
        "--model",
        MODEL,
        "--stand",
        "production",
        "--run-id",
        run_id,
    )

    assert first_only.returncode == 1
    assert "no earlier version of ml-override" in first_only.stderr
    assert "give the version to go back to with --version" in first_only.stderr
    assert refused.returncode == 1 and "did not pass the quality gate" in refused.stderr
    assert "--reason" in refused.stderr
    assert shared_state(platform) == before
    assert client.get_registered_model(registered).aliases == {"staging": "1"}

    ok(
        modelci(
            platform,
            main,
            "deploy-version",
            "--model",
            MODEL,
            "--stand",
            "production",
            "--run-id",
            run_id,
            MODELCI_DEPLOY_REASON="hotfix agreed with the owner",
        )
    )
    tags = client.get_model_version(registered, "1").tags
    assert tags["modelci.stand.production.gate_override"] == "hotfix agreed with the owner"
    assert tags["modelci.stand.production.action"] == "deploy"
    assert client.get_registered_model(registered).aliases["production"] == "1"


def test_promotion_needs_the_merged_merge_request_and_a_working_api(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, "ml/no-mr")
    main = ModelRepo(repo.path, repo.project, "main")
    before = shared_state(platform)
    with running("glpat-promote-secret") as fake:
        api = {"MODELCI_GITLAB_TOKEN": fake.token, "CI_SERVER_URL": fake.url}
        not_found = modelci(platform, main, "promote", **api)
        fake.fail_with(503)
        started = time.monotonic()
        down = modelci(platform, main, "promote", **api)
        elapsed = time.monotonic() - started

    assert not_found.returncode == 1
    assert f"no merged merge request into main contains commit {main.commit}" in not_found.stderr
    assert down.returncode == 1 and "HTTP 503" in down.stderr
    assert elapsed < 30, f"promote took {elapsed:.0f} s to give up on a failing API"
    assert fake.token not in not_found.stderr + down.stderr
    assert shared_state(platform) == before


def test_two_moves_racing_for_one_stand_end_consistent(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    """Two deploy-version jobs for one stand at once (two runs of a job, or a job and a person
    at a terminal; within one project's CI the stand's resource_group serialises them): both
    are recorded, and the stand's files name the version its alias ends on."""
    project = "ml/racing"
    registered = names_for(project, "main", MODEL).registered_model
    repo = model_repo(tmp_path, project)
    for number, branch in enumerate(("feature/one", "feature/two")):
        if number:
            repo = on_branch_from_main(repo)
        main = on_main(push_branch(platform, repo, branch))
        ok(modelci(platform, main, "promote", "--branch", branch))
    client = MlflowClient(platform.mlflow.tracking_uri)
    run_of = {v: client.get_model_version(registered, v).run_id for v in ("1", "2")}
    production = names_for(project, "main", MODEL, stand="production")
    dag_path = production.dag_path("inference")

    def deploy(version: str) -> subprocess.CompletedProcess[str]:
        return modelci(
            platform, main, "deploy-version", "--model", MODEL, "--stand", "production",
            "--version", version,
        )  # fmt: skip

    for versions in (("1", "2"), ("2", "1")) * 3:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(deploy, versions))
        for result in results:
            ok(result)
        served = client.get_registered_model(registered).aliases["production"]
        values = git.Repo(platform.gitops_repo).git.show(
            f"{STANDS_BRANCH}:{production.values_path}"
        )
        dag = git.Repo(platform.dag_repo).git.show(f"{STANDS_BRANCH}:{dag_path}")
        assert re.search(rf"modelVersion: ['\"]?{served}['\"]?\n", values), (served, values)
        assert run_of[served] in values
        assert run_of[served] in dag
        for version in versions:
            tags = client.get_model_version(registered, version).tags
            assert tags["modelci.stand.production.action"] == "deploy"


def test_an_environment_archive_changed_after_training_never_reaches_a_stand(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    """The shared archives are writable with feature-branch keys: a stand takes a copy only
    when its bytes are the ones the run trained in (their sha256 is on the run)."""
    project = "ml/tampered"
    repo = model_repo(tmp_path, project)
    main = on_main(push_branch(platform, repo, "feature/tampered"))
    client = MlflowClient(platform.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(f"{project}/{MODEL}")
    (run,) = client.search_runs([experiment.experiment_id])
    archive = run.data.tags["modelci.env_archive"]
    assert len(run.data.tags["modelci.env_archive_sha256"]) == 64
    bucket, key = archive.removeprefix("s3://").split("/", 1)
    s3 = platform.s3.client()
    trained = s3.get_object(Bucket=bucket, Key=key)
    body, metadata = trained["Body"].read(), trained["Metadata"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"swapped after training")
    before = shared_state(platform)

    try:
        refused = modelci(platform, main, "promote", "--branch", "feature/tampered")
    finally:
        # The archive is shared by every test with these requirements: put its bytes back.
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata)

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"(copied from {archive}) has sha256" in refused.stderr
    assert "that the tags of run" in refused.stderr
    assert "Nothing was changed on the stand" in refused.stderr
    after = shared_state(platform)
    assert (after.dag_refs, after.gitops_refs) == (before.dag_refs, before.gitops_refs)
    stand_prefix = f"modelci-scratch/{names_for(project, 'main', MODEL, stand='staging').s3_prefix}"
    assert not [k for k in after.s3_keys if k.startswith(f"{stand_prefix}envs/")]
    registered = names_for(project, "main", MODEL).registered_model
    assert not client.search_model_versions(f"name = '{registered}'") or (
        "staging" not in client.get_registered_model(registered).aliases
    )


def test_the_gate_compares_with_the_last_stand_whatever_it_is_called(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    """Stands dev, qa and prod: prod serves users, so a candidate is held against prod (there
    is no alias `production` to find)."""
    stands = "  - name: dev\n  - name: qa\n  - name: prod\n    manual: true\n"
    repo = model_repo(
        tmp_path,
        "ml/renamed-stands",
        config_edits={
            "  - name: staging         # promoted automatically\n": "",
            "  - name: production\n    manual: true          # needs a manual, protected job\n": (
                stands
            ),
        },
    )
    ok(modelci(platform, repo, "train"))
    run_id = json.loads((repo.path / ".modelci" / MODEL / "train.json").read_text())["run_id"]
    client = MlflowClient(platform.mlflow.tracking_uri)
    registered = names_for("ml/renamed-stands", "main", MODEL).registered_model
    client.create_registered_model(registered)
    served = client.create_model_version(registered, f"runs:/{run_id}/model", run_id)
    client.set_registered_model_alias(registered, "prod", served.version)  # what prod serves

    output = ok(modelci(platform, repo, "gate"))

    assert "[PASS] accuracy vs prod: accuracy = " in output, output
    assert "is not worse than prod's" in output
