"""Platform settings and pipeline provenance, read from the CI environment.

Two kinds of variables, and a missing one is fixed in different places:
- GitLab's predefined variables (`CI_*`, `GITLAB_USER_LOGIN`): GitLab sets them itself in every
  CI job. Only outside GitLab CI (on a laptop) are they missing; there `Pipeline.local` fills
  what a dry run needs from the git checkout.
- The platform's variables (`MODELCI_*`, `MLFLOW_*`, `AWS_*`): a platform team sets them once,
  at group level in GitLab (Settings > CI/CD > Variables).

Secrets (S3 keys, git and GitLab tokens, MLflow credentials) are read where they are used and
never stored on these objects, so printing a Settings is safe; an endpoint URL that carries
credentials is refused rather than stored.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ModelciError

# Per endpoint variable: where its URL ends up, and where the keys belong instead of in it.
_ENDPOINTS = {
    "MLFLOW_S3_ENDPOINT_URL": (
        "printed in job logs",
        "the masked CI/CD variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    ),
    "MODELCI_CLUSTER_S3_ENDPOINT": (
        "printed in job logs and committed to the DAG bundle and GitOps repos",
        "the Kubernetes Secret named by MODELCI_CLUSTER_S3_SECRET (default modelci-s3), "
        "which pods read",
    ),
}
LOCAL_PROJECT_GROUP = "local"  # project path outside CI when origin names no GitLab project
NO_COMMIT = "0" * 40  # commit outside CI when the checkout has none yet
_SCP_LIKE = re.compile(r"^[^/@:]+@[^/:]+:(?P<path>[^/].*)$")  # git@host:group/project.git


def _get(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def _require_predefined(env: Mapping[str, str], name: str, purpose: str) -> str:
    """A GitLab predefined variable: never the platform team's to set."""
    value = _get(env, name)
    if value:
        return value
    if _get(env, "CI"):
        raise ModelciError(
            f"GitLab's predefined variable {name} is empty in this job; it is needed {purpose}. "
            "GitLab sets it in every CI job, so something overrides it: look for "
            f"{name} in the job's or the project's `variables:` and remove it."
        )
    raise ModelciError(
        f"{name} is not set; it is needed {purpose}. It is one of GitLab's predefined "
        "variables, which GitLab sets in every CI job, and this is not running in GitLab CI. "
        f"Run it in a pipeline, or set {name} yourself for a local try "
        "(`modelci render` works out the project, branch and commit from the git checkout)."
    )


def require_platform(env: Mapping[str, str], name: str, purpose: str) -> str:
    """A platform variable (`MODELCI_*`, `MLFLOW_*`, `AWS_*`), set once for the GitLab group."""
    value = _get(env, name)
    if not value:
        raise ModelciError(
            f"platform CI/CD variable {name} is not set; it is needed {purpose}. "
            "The platform team sets it in the GitLab group's Settings > CI/CD > Variables "
            "(see docs/platform/setup.md, 'CI/CD variables')."
        )
    return value


def _endpoint(env: Mapping[str, str], name: str) -> str:
    """An S3 endpoint URL, refused when it carries user-info (it is printed and committed)."""
    value = _get(env, name)
    before_query = re.split(r"[?#]", value, maxsplit=1)[0]
    if "@" in before_query:
        scheme, separator, rest = value.partition("://")
        shown = f"{scheme}://***@" if separator else "***@"
        shown += (rest if separator else value).rsplit("@", 1)[1]
        raise ModelciError(
            f"{name} must not contain credentials, but it has a user name or password before "
            f"'@' ({shown}), and its URL is {_ENDPOINTS[name][0]}. Set {name} to the URL "
            f"without them ({shown.replace('***@', '')}) and keep the keys in "
            f"{_ENDPOINTS[name][1]}."
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
    stands_branch: str  # MODELCI_STANDS_BRANCH: the protected branch of both repos stands live on
    airflow_url: str  # MODELCI_AIRFLOW_URL: Airflow UI, for links
    ingress_domain: str  # MODELCI_INGRESS_DOMAIN: KServe's ingress domain
    url_scheme: str  # MODELCI_URL_SCHEME: http or https
    runtime_image: str  # MODELCI_RUNTIME_IMAGE: image batch pods run when mlops.yaml names none
    cluster_s3_endpoint: str  # MODELCI_CLUSTER_S3_ENDPOINT: S3 URL as pods reach it ("": AWS)
    cluster_s3_secret: (
        str  # MODELCI_CLUSTER_S3_SECRET: Secret with S3 keys, managed by the platform
    )
    s3_region: str  # AWS_DEFAULT_REGION
    push_budget_seconds: float  # MODELCI_PUSH_BUDGET_SECONDS: how long a shared-repo write retries
    env_retention_days: float  # MODELCI_ENV_RETENTION_DAYS: unused environment archives kept
    # MODELCI_ARGOCD_WEBHOOK_URLS: Argo CD webhook endpoints told of each GitOps commit
    argocd_webhook_urls: tuple[str, ...] = ()
    # MODELCI_RETRAIN_TRIGGER_SECRET: Secret with MODELCI_TRIGGER_TOKEN for monitoring pods
    retrain_trigger_secret: str = "modelci-retrain-trigger"
    # MODELCI_STANDS_AIRFLOW_URL: the stands' own Airflow UI (default MODELCI_AIRFLOW_URL)
    stands_airflow_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            tracking_uri=_get(env, "MLFLOW_TRACKING_URI"),
            artifacts_destination=_get(env, "MODELCI_ARTIFACTS_DESTINATION"),
            s3_endpoint=_endpoint(env, "MLFLOW_S3_ENDPOINT_URL"),
            scratch_uri=_get(env, "MODELCI_SCRATCH_URI"),
            dag_repo_url=_get(env, "MODELCI_DAG_REPO_URL"),
            dag_repo_branch=_get(env, "MODELCI_DAG_REPO_BRANCH", "main"),
            gitops_repo_url=_get(env, "MODELCI_GITOPS_REPO_URL"),
            gitops_repo_branch=_get(env, "MODELCI_GITOPS_REPO_BRANCH", "main"),
            stands_branch=_stands_branch(env),
            airflow_url=_get(env, "MODELCI_AIRFLOW_URL"),
            ingress_domain=_get(env, "MODELCI_INGRESS_DOMAIN", "example.com"),
            url_scheme=_get(env, "MODELCI_URL_SCHEME", "https"),
            runtime_image=_get(env, "MODELCI_RUNTIME_IMAGE"),
            cluster_s3_endpoint=_endpoint(env, "MODELCI_CLUSTER_S3_ENDPOINT"),
            cluster_s3_secret=_get(env, "MODELCI_CLUSTER_S3_SECRET", "modelci-s3"),
            s3_region=_get(env, "AWS_DEFAULT_REGION", "us-east-1"),
            push_budget_seconds=_seconds(env, "MODELCI_PUSH_BUDGET_SECONDS", 600.0),
            env_retention_days=_seconds(env, "MODELCI_ENV_RETENTION_DAYS", 14.0, unit="days"),
            argocd_webhook_urls=tuple(_get(env, "MODELCI_ARGOCD_WEBHOOK_URLS").split()),
            retrain_trigger_secret=_get(
                env, "MODELCI_RETRAIN_TRIGGER_SECRET", "modelci-retrain-trigger"
            ),
            stands_airflow_url=_get(env, "MODELCI_STANDS_AIRFLOW_URL")
            or _get(env, "MODELCI_AIRFLOW_URL"),
        )


def _stands_branch(env: Mapping[str, str]) -> str:
    stands = _get(env, "MODELCI_STANDS_BRANCH", "stands")
    for name in ("MODELCI_DAG_REPO_BRANCH", "MODELCI_GITOPS_REPO_BRANCH"):
        if stands == _get(env, name, "main"):
            raise ModelciError(
                f"platform CI/CD variables MODELCI_STANDS_BRANCH and {name} are both "
                f"{stands!r}, but stands must live on a branch of their own that only the "
                "protected stand credentials can push to (docs/platform/setup.md, 'Stands and "
                "credentials'). "
                "Set MODELCI_STANDS_BRANCH to another branch (default: stands)."
            )
    return stands


# Stand jobs (promote, rollback, deploy-version) write with these protected CI/CD variables
# only: each replaces the variable the feature-branch jobs use, which is dropped when unset.
STAND_CREDENTIALS = {
    "MODELCI_DAG_REPO_TOKEN": "MODELCI_STANDS_DAG_REPO_TOKEN",
    "MODELCI_GITOPS_REPO_TOKEN": "MODELCI_STANDS_GITOPS_REPO_TOKEN",
    "MLFLOW_TRACKING_USERNAME": "MODELCI_STANDS_MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD": "MODELCI_STANDS_MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN": "MODELCI_STANDS_MLFLOW_TRACKING_TOKEN",
    "AWS_ACCESS_KEY_ID": "MODELCI_STANDS_AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "MODELCI_STANDS_AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN": "MODELCI_STANDS_AWS_SESSION_TOKEN",
}


def use_stand_credentials(environ: MutableMapping[str, str]) -> list[str]:
    """Put the stand credentials in place of the feature-branch ones in `environ` (this
    process's environment in a stand job); return the names of those that are set.

    A feature-branch credential is never used for a stand, even when its stand counterpart is
    missing: then the write goes without credentials and the server refuses it.
    """
    present = []
    for branch_name, stand_name in STAND_CREDENTIALS.items():
        value = _get(environ, stand_name)
        if value:
            environ[branch_name] = value
            present.append(stand_name)
        else:
            environ.pop(branch_name, None)
    return present


def require_stand_credentials(environ: MutableMapping[str, str], command: str) -> list[str]:
    """`use_stand_credentials`, refusing when the job has none of them: a feature branch's job
    (GitLab hands protected variables only to protected refs) must not reach a stand even where
    the runner itself could (a role, a local git remote)."""
    present = use_stand_credentials(environ)
    print(
        "stand credentials (protected CI/CD variables) in this job: "
        + (", ".join(present) or "none"),
        flush=True,
    )
    if not present:
        raise ModelciError(
            f"`modelci {command}` changes a stand and needs the stand credentials "
            f"({', '.join(sorted(set(STAND_CREDENTIALS.values())))}), which GitLab hands only to "
            "pipelines of protected branches and tags; this job has none of them. Nothing was "
            "changed. Run it from a job on the protected default branch."
        )
    return present


def _seconds(env: Mapping[str, str], name: str, default: float, *, unit: str = "seconds") -> float:
    """A duration variable: a number from 0 to 86400 of `unit`."""
    text = _get(env, name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise ModelciError(
            f"platform CI/CD variable {name} is {text!r}; expected a number of {unit} from 0 to "
            f"86400 (default {default:g}). Fix it in the GitLab group's CI/CD variables."
        )
    return value


def _git(repo_dir: Path, *args: str) -> str | None:
    """Output of `git -C repo_dir args`, or None when git fails or is not installed."""
    try:
        result = subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    output = result.stdout.strip()
    return output if result.returncode == 0 and output else None


def project_from_remote(url: str) -> tuple[str, str] | None:
    """(project path, web URL) of a GitLab remote URL, None for a local path or file:// URL.

    `https://user:token@gitlab.example.com/ml/churn.git` -> (`ml/churn`,
    `https://gitlab.example.com/ml/churn`); `git@gitlab.example.com:ml/churn.git` and
    `ssh://git@gitlab.example.com:2222/ml/churn.git` give the same. No credentials are kept.
    """
    scp = _SCP_LIKE.match(url)
    if scp and "://" not in url:
        host = url.split("@", 1)[1].split(":", 1)[0]
        path = scp["path"]
    else:
        scheme, separator, rest = url.partition("://")
        if not separator or scheme.lower() not in ("http", "https", "ssh", "git"):
            return None
        authority, _, path = rest.partition("/")
        host = authority.rsplit("@", 1)[-1]
        if scheme.lower() in ("ssh", "git"):
            host = host.split(":", 1)[0]
    path = path.split("?", 1)[0].split("#", 1)[0].strip("/")
    path = path.removesuffix(".git").strip("/")
    if not host or "/" not in path:  # a GitLab project path always has a group
        return None
    scheme = "http" if url.lower().startswith("http://") else "https"
    return path, f"{scheme}://{host}/{path}"


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
    server_url: str = ""  # CI_SERVER_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Pipeline:
        """The pipeline of a GitLab CI job; outside CI the predefined variables are missing."""
        return cls(
            project=_require_predefined(env, "CI_PROJECT_PATH", "to name the project"),
            project_url=_get(env, "CI_PROJECT_URL"),
            branch=_require_predefined(env, "CI_COMMIT_REF_NAME", "to name the environment"),
            default_branch=_get(env, "CI_DEFAULT_BRANCH", "main"),
            commit=_require_predefined(env, "CI_COMMIT_SHA", "to record which commit was trained"),
            pipeline_id=_get(env, "CI_PIPELINE_ID", "0"),
            pipeline_url=_get(env, "CI_PIPELINE_URL"),
            job_url=_get(env, "CI_JOB_URL"),
            user=_get(env, "GITLAB_USER_LOGIN", "unknown"),
            server_url=_get(env, "CI_SERVER_URL"),
        )

    @classmethod
    def local(
        cls,
        repo_dir: str | os.PathLike[str] = ".",
        env: Mapping[str, str] | None = None,
        *,
        project: str | None = None,
        branch: str | None = None,
    ) -> Pipeline:
        """A stand-in pipeline for a dry run on a laptop, from the git checkout at `repo_dir`.

        Each value comes from, first found: the argument, the `CI_*` variable if the user set
        it, git. Project: the path of `git remote get-url origin` (`ml/churn`), else
        `local/<directory name>`. Branch: the checked-out branch; a detached HEAD or a directory
        outside git needs `branch=`. Commit: HEAD, or forty zeros before the first commit.
        """
        env = os.environ if env is None else env
        top = Path(_git(Path(repo_dir), "rev-parse", "--show-toplevel") or repo_dir).resolve()
        origin = _git(top, "remote", "get-url", "origin")
        remote = project_from_remote(origin) if origin else None
        project = project or _get(env, "CI_PROJECT_PATH")
        if not project:
            project = remote[0] if remote else f"{LOCAL_PROJECT_GROUP}/{top.name or 'project'}"
        branch = (
            branch
            or _get(env, "CI_COMMIT_REF_NAME")
            or _git(top, "symbolic-ref", "--quiet", "--short", "HEAD")
        )
        if not branch:
            raise ModelciError(
                f"cannot tell which branch {top} is on (not a git checkout, or a detached "
                "HEAD); name it: `--branch <name>` (or set CI_COMMIT_REF_NAME)"
            )
        commit = (
            _get(env, "CI_COMMIT_SHA")
            or _git(top, "rev-parse", "--quiet", "--verify", "HEAD^{commit}")
            or NO_COMMIT
        )
        return cls(
            project=project,
            project_url=_get(env, "CI_PROJECT_URL") or (remote[1] if remote else ""),
            branch=branch,
            default_branch=_get(env, "CI_DEFAULT_BRANCH", "main"),
            commit=commit,
            pipeline_id=_get(env, "CI_PIPELINE_ID", "0"),
            pipeline_url=_get(env, "CI_PIPELINE_URL"),
            job_url=_get(env, "CI_JOB_URL"),
            user=_get(env, "GITLAB_USER_LOGIN") or _get(env, "USER", "unknown"),
        )

    @classmethod
    def for_dry_run(
        cls,
        env: Mapping[str, str],
        repo_dir: str | os.PathLike[str] = ".",
        *,
        project: str | None = None,
        branch: str | None = None,
    ) -> Pipeline:
        """What `modelci render` shows: inside GitLab CI (`CI` set) the job's pipeline, with
        `project`/`branch` overriding it when given; outside CI, `Pipeline.local`."""
        if not _get(env, "CI"):
            return cls.local(repo_dir, env, project=project, branch=branch)
        pipeline = cls.from_env(env)
        return replace(
            pipeline, project=project or pipeline.project, branch=branch or pipeline.branch
        )
