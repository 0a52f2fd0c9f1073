"""Settings and pipeline provenance: which variables come from where, and what a missing or
unsafe one says; the laptop path that reads provenance from the git checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelci.config.settings import (
    NO_COMMIT,
    Pipeline,
    Settings,
    project_from_remote,
    require_platform,
    use_stand_credentials,
)
from modelci.errors import ModelciError

CI_ENV = {
    "CI": "true",
    "CI_PROJECT_PATH": "ml/churn",
    "CI_PROJECT_URL": "https://gitlab.example.com/ml/churn",
    "CI_COMMIT_REF_NAME": "feature/x",
    "CI_COMMIT_SHA": "a" * 40,
    "CI_PIPELINE_ID": "42",
    "GITLAB_USER_LOGIN": "ds",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout on branch feature/laptop with one commit."""
    repo = tmp_path / "churn-model"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "user.name", "Data Scientist")
    git(repo, "config", "user.email", "ds@example.com")
    (repo / "mlops.yaml").write_text("version: 1\n", encoding="utf-8")
    git(repo, "add", "mlops.yaml")
    git(repo, "commit", "--quiet", "-m", "first")
    git(repo, "checkout", "--quiet", "-b", "feature/laptop")
    return repo


# --- predefined variables (GitLab's) versus platform variables (the platform team's) ----------


def test_pipeline_from_env_in_ci() -> None:
    pipeline = Pipeline.from_env(CI_ENV)
    assert (pipeline.project, pipeline.branch, pipeline.commit) == (
        "ml/churn",
        "feature/x",
        "a" * 40,
    )
    assert pipeline.pipeline_id == "42" and pipeline.user == "ds"


@pytest.mark.parametrize("name", ["CI_PROJECT_PATH", "CI_COMMIT_REF_NAME", "CI_COMMIT_SHA"])
def test_missing_predefined_variable_outside_ci_says_it_is_not_ci(name: str) -> None:
    env = {k: v for k, v in CI_ENV.items() if k not in (name, "CI")}
    with pytest.raises(ModelciError) as error:
        Pipeline.from_env(env)
    message = str(error.value)
    assert name in message
    assert "predefined" in message and "GitLab sets in every CI job" in message
    assert "not running in GitLab CI" in message
    # Not the platform team's business: no pointer to the group's variables.
    assert "Settings > CI/CD" not in message and "group" not in message


def test_empty_predefined_variable_inside_ci_points_at_an_override() -> None:
    env = {**CI_ENV, "CI_COMMIT_REF_NAME": ""}
    with pytest.raises(ModelciError) as error:
        Pipeline.from_env(env)
    message = str(error.value)
    assert "CI_COMMIT_REF_NAME" in message and "overrides it" in message
    assert "Settings > CI/CD" not in message


def test_missing_platform_variable_points_at_the_group_settings() -> None:
    assert require_platform({"MODELCI_SCRATCH_URI": "s3://b/p"}, "MODELCI_SCRATCH_URI", "x")
    with pytest.raises(ModelciError) as error:
        require_platform({}, "MODELCI_SCRATCH_URI", "to store code archives")
    message = str(error.value)
    assert "platform CI/CD variable MODELCI_SCRATCH_URI" in message
    assert "Settings > CI/CD > Variables" in message and "predefined" not in message


# --- endpoints with credentials are refused, without echoing them ------------------------------


def test_plain_endpoints_are_kept() -> None:
    settings = Settings.from_env(
        {
            "MLFLOW_S3_ENDPOINT_URL": "http://minio.ci:9000",
            "MODELCI_CLUSTER_S3_ENDPOINT": "http://minio.storage.svc:9000",
        }
    )
    assert settings.s3_endpoint == "http://minio.ci:9000"
    assert settings.cluster_s3_endpoint == "http://minio.storage.svc:9000"
    assert Settings.from_env({}).cluster_s3_endpoint == ""


@pytest.mark.parametrize(
    ("variable", "where"),
    [
        ("MODELCI_CLUSTER_S3_ENDPOINT", "MODELCI_CLUSTER_S3_SECRET"),
        ("MLFLOW_S3_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY"),
    ],
)
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://admin:hunter2-pw@minio:9000", "http://minio:9000"),
        ("https://hunter2-pw@s3.example.com/", "https://s3.example.com/"),
        ("http://admin:hunter2/pw@minio:9000", "http://minio:9000"),  # raw '/' in the password
        ("admin:hunter2-pw@minio:9000", "minio:9000"),  # no scheme
        ("http://admin:p%40ss-hunter2@minio:9000", "http://minio:9000"),
    ],
)
def test_endpoint_with_credentials_is_refused_without_echoing_them(
    variable: str, where: str, url: str, shown: str
) -> None:
    with pytest.raises(ModelciError) as error:
        Settings.from_env({variable: url})
    message = str(error.value)
    assert variable in message and "must not contain credentials" in message
    assert where in message  # where the keys belong instead
    assert f"Set {variable} to the URL without them ({shown})" in message
    assert "hunter2" not in message and "admin" not in message


# --- the laptop path -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://gitlab.example.com/ml/churn.git",
            ("ml/churn", "https://gitlab.example.com/ml/churn"),
        ),
        (
            "https://oauth2:glpat-secret@gitlab.example.com:8443/a/b/c.git/",
            ("a/b/c", "https://gitlab.example.com:8443/a/b/c"),
        ),
        ("http://gitlab.local/ml/churn", ("ml/churn", "http://gitlab.local/ml/churn")),
        (
            "git@gitlab.example.com:ml/churn.git",
            ("ml/churn", "https://gitlab.example.com/ml/churn"),
        ),
        (
            "ssh://git@gitlab.example.com:2222/ml/churn.git",
            ("ml/churn", "https://gitlab.example.com/ml/churn"),
        ),
        ("/srv/git/churn.git", None),
        ("file:///srv/git/ml/churn.git", None),
        ("../churn", None),
        ("https://gitlab.example.com/churn.git", None),  # no group: not a GitLab project path
    ],
)
def test_project_from_remote(url: str, expected: tuple[str, str] | None) -> None:
    assert project_from_remote(url) == expected


def test_local_pipeline_reads_the_checkout(checkout: Path) -> None:
    git(checkout, "remote", "add", "origin", "git@gitlab.example.com:ml/churn.git")
    (checkout / "sub").mkdir()
    pipeline = Pipeline.local(checkout / "sub", {"USER": "alice"})
    assert pipeline.project == "ml/churn"
    assert pipeline.project_url == "https://gitlab.example.com/ml/churn"
    assert pipeline.branch == "feature/laptop"
    assert pipeline.commit == git(checkout, "rev-parse", "HEAD")
    assert pipeline.user == "alice" and pipeline.pipeline_id == "0"


def test_local_pipeline_without_a_gitlab_remote_uses_a_placeholder_project(
    checkout: Path,
) -> None:
    pipeline = Pipeline.local(checkout, {})
    assert pipeline.project == "local/churn-model" and pipeline.project_url == ""
    git(checkout, "remote", "add", "origin", "/srv/git/churn.git")
    assert Pipeline.local(checkout, {}).project == "local/churn-model"


def test_local_pipeline_arguments_then_variables_then_git(checkout: Path) -> None:
    env = {"CI_PROJECT_PATH": "team/from-env", "CI_COMMIT_REF_NAME": "env-branch"}
    pipeline = Pipeline.local(checkout, env)
    assert (pipeline.project, pipeline.branch) == ("team/from-env", "env-branch")
    pipeline = Pipeline.local(checkout, env, project="team/flag", branch="flag-branch")
    assert (pipeline.project, pipeline.branch) == ("team/flag", "flag-branch")


def test_local_pipeline_before_the_first_commit(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet", "--initial-branch=start")
    pipeline = Pipeline.local(tmp_path, {})
    assert pipeline.branch == "start" and pipeline.commit == NO_COMMIT


def test_local_pipeline_needs_a_branch_on_a_detached_head_or_outside_git(
    checkout: Path, tmp_path: Path
) -> None:
    git(checkout, "checkout", "--quiet", "--detach")
    with pytest.raises(ModelciError, match="--branch"):
        Pipeline.local(checkout, {})
    assert Pipeline.local(checkout, {}, branch="feature/laptop").branch == "feature/laptop"
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ModelciError, match="--branch"):
        Pipeline.local(plain, {"GIT_CEILING_DIRECTORIES": str(tmp_path)})


def test_dry_run_pipeline_inside_and_outside_ci(checkout: Path) -> None:
    inside = Pipeline.for_dry_run(CI_ENV, checkout)
    assert inside == Pipeline.from_env(CI_ENV)
    overridden = Pipeline.for_dry_run(CI_ENV, checkout, branch="other")
    assert overridden.branch == "other" and overridden.project == "ml/churn"
    outside = Pipeline.for_dry_run({}, checkout, project="ml/churn")
    assert outside.project == "ml/churn" and outside.branch == "feature/laptop"


def test_stands_live_on_a_branch_of_their_own() -> None:
    assert Settings.from_env({}).stands_branch == "stands"
    assert Settings.from_env({"MODELCI_STANDS_BRANCH": "prod"}).stands_branch == "prod"
    with pytest.raises(ModelciError, match="MODELCI_STANDS_BRANCH and MODELCI_GITOPS_REPO_BRANCH"):
        Settings.from_env(
            {"MODELCI_STANDS_BRANCH": "deploy", "MODELCI_GITOPS_REPO_BRANCH": "deploy"}
        )
    with pytest.raises(ModelciError, match="MODELCI_STANDS_BRANCH and MODELCI_DAG_REPO_BRANCH"):
        Settings.from_env({"MODELCI_STANDS_BRANCH": "main"})


def test_stand_jobs_use_only_the_protected_credentials() -> None:
    environ = {
        "MODELCI_DAG_REPO_TOKEN": "branch-token",
        "MODELCI_GITOPS_REPO_TOKEN": "branch-token",
        "MLFLOW_TRACKING_USERNAME": "branches",
        "MLFLOW_TRACKING_PASSWORD": "branch-password",
        "AWS_ACCESS_KEY_ID": "branch-key",
        "MODELCI_STANDS_GITOPS_REPO_TOKEN": "stand-token",
        "MODELCI_STANDS_MLFLOW_TRACKING_USERNAME": "stands",
        "MODELCI_STANDS_MLFLOW_TRACKING_PASSWORD": " ",  # set but empty: as good as missing
        "OTHER": "kept",
    }
    present = use_stand_credentials(environ)
    assert present == [
        "MODELCI_STANDS_GITOPS_REPO_TOKEN",
        "MODELCI_STANDS_MLFLOW_TRACKING_USERNAME",
    ]
    assert environ["MODELCI_GITOPS_REPO_TOKEN"] == "stand-token"
    assert environ["MLFLOW_TRACKING_USERNAME"] == "stands"
    assert "branch-token" not in environ.values()  # no stand counterpart: dropped, not kept
    assert "branch-password" not in environ.values() and "branch-key" not in environ.values()
    assert environ["OTHER"] == "kept"


def test_a_stand_write_to_a_gitlab_repo_needs_the_protected_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelci.lifecycle.workspace import dag_repo, gitops_repo

    settings = Settings.from_env(
        {
            "MODELCI_DAG_REPO_URL": "https://gitlab.example.com/platform/dags.git",
            "MODELCI_GITOPS_REPO_URL": "https://gitlab.example.com/platform/gitops.git",
        }
    )
    monkeypatch.delenv("MODELCI_GITOPS_REPO_TOKEN", raising=False)
    with pytest.raises(ModelciError, match="MODELCI_STANDS_GITOPS_REPO_TOKEN is not set"):
        gitops_repo(settings, stands=True)
    assert gitops_repo(settings).branch == "main"  # a feature environment may try without
    monkeypatch.setenv("MODELCI_DAG_REPO_TOKEN", "stand-token")
    assert dag_repo(settings, stands=True).branch == "stands"
