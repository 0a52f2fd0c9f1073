"""Platform settings and pipeline provenance, read from the CI environment.

A platform team sets the `MODELCI_*` variables once, at group level in GitLab; GitLab itself
provides the `CI_*` ones. Secrets (S3 keys, git and GitLab tokens, MLflow credentials) are
read where they are used and never stored on these objects, so printing a Settings is safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ModelciError


def _get(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def _require(env: Mapping[str, str], name: str, purpose: str) -> str:
    value = _get(env, name)
    if not value:
        raise ModelciError(
            f"CI/CD variable {name} is not set; it is needed {purpose}. "
            "Set it in the GitLab group's Settings > CI/CD > Variables "
            "(see README, 'Platform variables')."
        )
    return value


@dataclass(frozen=True)
class Settings:
    tracking_uri: str  # MLFLOW_TRACKING_URI
    artifacts_destination: str  # MODELCI_ARTIFACTS_DESTINATION: s3:// URI behind mlflow-artifacts:/
    s3_endpoint: str  # MLFLOW_S3_ENDPOINT_URL: S3 endpoint as CI jobs reach it ("" for AWS)
    scratch_uri: str  # MODELCI_SCRATCH_URI: s3://bucket/prefix for code archives per environment
    dag_repo_url: str  # MODELCI_DAG_REPO_URL, without credentials
    dag_repo_branch: str  # MODELCI_DAG_REPO_BRANCH: the ref the GitDagBundle tracks
    gitops_repo_url: str  # MODELCI_GITOPS_REPO_URL, without credentials
    gitops_repo_branch: str  # MODELCI_GITOPS_REPO_BRANCH: the revision the ApplicationSet reads
    airflow_url: str  # MODELCI_AIRFLOW_URL: Airflow UI, for links
    ingress_domain: str  # MODELCI_INGRESS_DOMAIN: KServe's ingress domain
    url_scheme: str  # MODELCI_URL_SCHEME: http or https
    runtime_image: str  # MODELCI_RUNTIME_IMAGE: image batch pods run when mlops.yaml names none
    cluster_s3_endpoint: str  # MODELCI_CLUSTER_S3_ENDPOINT: S3 URL as pods reach it ("": AWS)
    cluster_s3_secret: (
        str  # MODELCI_CLUSTER_S3_SECRET: Secret with S3 keys, managed by the platform
    )
    s3_region: str  # AWS_DEFAULT_REGION

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            tracking_uri=_get(env, "MLFLOW_TRACKING_URI"),
            artifacts_destination=_get(env, "MODELCI_ARTIFACTS_DESTINATION"),
            s3_endpoint=_get(env, "MLFLOW_S3_ENDPOINT_URL"),
            scratch_uri=_get(env, "MODELCI_SCRATCH_URI"),
            dag_repo_url=_get(env, "MODELCI_DAG_REPO_URL"),
            dag_repo_branch=_get(env, "MODELCI_DAG_REPO_BRANCH", "main"),
            gitops_repo_url=_get(env, "MODELCI_GITOPS_REPO_URL"),
            gitops_repo_branch=_get(env, "MODELCI_GITOPS_REPO_BRANCH", "main"),
            airflow_url=_get(env, "MODELCI_AIRFLOW_URL"),
            ingress_domain=_get(env, "MODELCI_INGRESS_DOMAIN", "example.com"),
            url_scheme=_get(env, "MODELCI_URL_SCHEME", "https"),
            runtime_image=_get(env, "MODELCI_RUNTIME_IMAGE"),
            cluster_s3_endpoint=_get(env, "MODELCI_CLUSTER_S3_ENDPOINT"),
            cluster_s3_secret=_get(env, "MODELCI_CLUSTER_S3_SECRET", "modelci-s3"),
            s3_region=_get(env, "AWS_DEFAULT_REGION", "us-east-1"),
        )


@dataclass(frozen=True)
class Pipeline:
    """Who is running: the provenance every run tag, commit message and header carries."""

    project: str  # CI_PROJECT_PATH, e.g. "ml/churn"
    project_url: str  # CI_PROJECT_URL
    branch: str  # CI_COMMIT_REF_NAME
    default_branch: str  # CI_DEFAULT_BRANCH
    commit: str  # CI_COMMIT_SHA
    pipeline_id: str  # CI_PIPELINE_ID
    pipeline_url: str  # CI_PIPELINE_URL
    job_url: str  # CI_JOB_URL
    user: str  # GITLAB_USER_LOGIN

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Pipeline:
        return cls(
            project=_require(env, "CI_PROJECT_PATH", "to name the project"),
            project_url=_get(env, "CI_PROJECT_URL"),
            branch=_require(env, "CI_COMMIT_REF_NAME", "to name the environment"),
            default_branch=_get(env, "CI_DEFAULT_BRANCH", "main"),
            commit=_require(env, "CI_COMMIT_SHA", "to record which commit was trained"),
            pipeline_id=_get(env, "CI_PIPELINE_ID", "0"),
            pipeline_url=_get(env, "CI_PIPELINE_URL"),
            job_url=_get(env, "CI_JOB_URL"),
            user=_get(env, "GITLAB_USER_LOGIN", "unknown"),
        )
