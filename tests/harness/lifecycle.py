"""The embedded default platform and a model repository, for running the real CI templates
with gitlab-ci-local: shared by the end-to-end tests and `scripts/demo.sh`.

The model repository is `examples/churn` as a data scientist would have it: its
`.gitlab-ci.yml` includes this library with `include: project:`. gitlab-ci-local cannot reach
a GitLab server, so the library's `ci-templates/` are placed in gitlab-ci-local's include
cache under that project and ref, which is where it looks for them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import git
from ruamel.yaml import YAML

from modelci.config.naming import names_for
from tests.harness.mlflowserver import MlflowServer
from tests.harness.s3server import S3Server
from tests.harness.tools import GITLAB_CI_LOCAL, ROOT, VENV_BIN

EXAMPLE_REPO = ROOT / "examples" / "churn"
GITLAB_HOST = "gitlab.example.com"
PLATFORM_IMAGE = "registry.example.com/platform/modelci:0.1.0"
AUTHOR = ("Data Scientist", "ds@example.com")
# The jobs a push to a feature branch runs (full.yml with the default job prefix), in order.
PUSH_JOBS = (
    "modelci-validate",
    "modelci-train",
    "modelci-gate",
    "modelci-resolve",
    "modelci-deploy-batch",
    "modelci-deploy-online",
    "modelci-report",
)
SEAL_KEY = "seal-key-of-the-local-platform-0123456789"  # MODELCI_STANDS_SEAL_KEY
# What other projects and environments already have in the shared repos: must survive.
NEIGHBOURS = {
    "dags/other-project/b-main-fix/churn__inference.py": "# another project's DAG\n",
    "environments/other-project/b-main-fix/churn/values.yaml": "name: other\n",
}


@dataclass(frozen=True)
class LocalPlatform:
    """Real local services standing in for what a platform team runs."""

    s3: S3Server
    mlflow: MlflowServer
    dag_repo: Path  # bare repo the Airflow GitDagBundle tracks
    gitops_repo: Path  # bare repo the Argo CD ApplicationSet reads
    env_cache: Path = ROOT / ".cache" / "model-envs"  # model environments, built once per key

    def ci_variables(self) -> dict[str, str]:
        """The group-level CI/CD variables, as a platform team would set them."""
        return {
            **self.mlflow.env,
            "MODELCI_IMAGE": PLATFORM_IMAGE,
            "MODELCI_RUNTIME_IMAGE": PLATFORM_IMAGE,
            "MODELCI_ARTIFACTS_DESTINATION": self.mlflow.artifacts_destination,
            "MODELCI_SCRATCH_URI": f"s3://{self.s3.bucket}/modelci-scratch",
            "MODELCI_DAG_REPO_URL": self.dag_repo.as_uri(),
            "MODELCI_GITOPS_REPO_URL": self.gitops_repo.as_uri(),
            "MODELCI_AIRFLOW_URL": "http://airflow.localhost:8080",
            "MODELCI_INGRESS_DOMAIN": "models.localhost",
            "MODELCI_URL_SCHEME": "http",
            "MODELCI_CLUSTER_S3_ENDPOINT": self.s3.endpoint_url,
            "MODELCI_ENV_CACHE": str(self.env_cache),
            **self._s3_keys(),
            # Protected in GitLab: stand jobs seal the digests they record on versions with it.
            "MODELCI_STANDS_SEAL_KEY": SEAL_KEY,
        }

    def _s3_keys(self) -> dict[str, str]:
        """The S3 keys of the branches' jobs (unprotected; one key for every project's
        branches) and of the stand jobs (protected variables in GitLab), limited as the
        README's S3 policy limits them. A stack with per-project keys sets them per job."""
        names = {identity.name for identity in self.s3.identities}
        if not {"branches", "stands"} <= names:
            return {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}  # no operator's key
        stands = self.s3.identity("stands")
        return {
            **self.s3.identity("branches").env,
            "MODELCI_STANDS_AWS_ACCESS_KEY_ID": stands.access_key,
            "MODELCI_STANDS_AWS_SECRET_ACCESS_KEY": stands.secret_key,
        }


def library_include(repo: Path) -> tuple[str, str]:
    """(project, ref) of the library include in a model repo's .gitlab-ci.yml."""
    document = YAML(typ="safe").load((repo / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    include = next(item for item in document["include"] if "project" in item)
    return include["project"], include["ref"]


def make_model_repo(path: Path, *, project: str, branch: str, example: Path = EXAMPLE_REPO) -> Path:
    """A clone of an example model repo on `branch`, with origin at `project` on GitLab."""
    shutil.copytree(example, path, ignore=shutil.ignore_patterns("__pycache__", "mlruns"))
    (path / ".gitignore").write_text(".gitlab-ci-local/\n.modelci/\n", encoding="utf-8")
    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", AUTHOR[0])
        config.set_value("user", "email", AUTHOR[1])
    repo.git.add(A=True)
    repo.index.commit("Initial model")
    repo.git.checkout("-b", branch)
    repo.create_remote("origin", f"https://{GITLAB_HOST}/{project}.git")
    for ref in {"main", branch}:
        repo.git.update_ref(f"refs/remotes/origin/{ref}", "main" if ref == "main" else branch)
    repo.git.symbolic_ref("refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    seed_library_include(path)
    return path


def seed_library_include(repo: Path) -> None:
    library, ref = library_include(repo)
    cache = repo / ".gitlab-ci-local" / "includes" / GITLAB_HOST / library / ref
    shutil.rmtree(cache, ignore_errors=True)
    shutil.copytree(ROOT / "ci-templates", cache / "ci-templates")


def commit_change(repo_path: Path, relative: str, text: str, message: str) -> str:
    repo = git.Repo(repo_path)
    (repo_path / relative).write_text(text, encoding="utf-8")
    repo.git.add(relative)
    sha = repo.index.commit(message).hexsha
    branch = repo.active_branch.name
    repo.git.update_ref(f"refs/remotes/origin/{branch}", sha)
    return sha


def merge_into_main(repo_path: Path, branch: str) -> str:
    """Merge `branch` into main with a merge commit, as GitLab's merge button does, and move
    origin/main there; the new main commit. The checkout is left on main."""
    repo = git.Repo(repo_path)
    repo.git.checkout("main")
    repo.git.merge("--no-ff", "-q", "-m", f"Merge branch '{branch}' into 'main'", branch)
    sha = repo.head.commit.hexsha
    repo.git.update_ref("refs/remotes/origin/main", sha)
    return sha


def publish_push_pipeline(gitlab, repo_path: Path, project: str, job: str = "modelci-gate") -> None:
    """Tell the fake GitLab API (`gitlab`) of the push pipeline gitlab-ci-local just ran on
    the checkout's branch: GitLab keeps each job's artifacts, and a merge's promotion reads the
    gate job's (gitlab-ci-local leaves them in `.gitlab-ci-local/artifacts/<job>/`)."""
    repo = git.Repo(repo_path)
    root = repo_path / ".gitlab-ci-local" / "artifacts" / job
    files = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    gitlab.add_pipeline(project, repo.active_branch.name, repo.head.commit.hexsha, {job: files})


def merge_request_merged(gitlab, repo_path: Path, branch: str, iid: int, by: str) -> str:
    """Merge `branch` as GitLab's merge button does (`merge_into_main`), and have the fake
    GitLab API list merge request `iid` as merged: its head commit, and the merge commit it
    contains. The new main commit."""
    head = git.Repo(repo_path).commit(branch).hexsha
    sha = merge_into_main(repo_path, branch)
    request = next(r for r in gitlab.merge_requests if r.iid == iid)
    request.state, request.merged_by, request.commits, request.sha = "merged", by, (sha,), head
    return sha


def run_pipeline(
    repo: Path,
    variables: Mapping[str, str],
    *,
    jobs: Sequence[str] = (),
    predefined: Mapping[str, str | None] | None = None,
    capture: bool = True,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run the repo's pipeline (or only `jobs`) with gitlab-ci-local's shell executor.

    `predefined` overrides GitLab's predefined variables gitlab-ci-local computes itself
    (None unsets one): a merge request pipeline is `CI_PIPELINE_SOURCE=merge_request_event`
    with the `CI_MERGE_REQUEST_*` variables and no `CI_COMMIT_BRANCH`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "CI_"))}
    env.update(variables)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    command = [
        str(GITLAB_CI_LOCAL),
        "--force-shell-executor",
        "--shell-isolation",
        "--color=false",
        "--max-job-name-padding=0",
        # tests/unit/test_ci_schema.py holds every CI file against GitLab's schema once;
        # gitlab-ci-local would do it again for each pipeline (about 0.4 s each).
        "--no-json-schema-validation",
        *_predefined_arguments(predefined or {}),
        *jobs,
    ]
    return subprocess.run(
        command,
        cwd=repo,
        env=env,
        text=True,
        capture_output=capture,
        timeout=timeout,
        check=False,
    )


def _predefined_arguments(predefined: Mapping[str, str | None]) -> list[str]:
    arguments = []
    for name, value in predefined.items():
        if value is None:
            arguments += ["--unset-variable", name]
        else:
            arguments += ["--variable", f"{name}={value}"]
    return arguments


def merge_request_event(project: str, branch: str, iid: int) -> dict[str, str | None]:
    """GitLab's predefined variables of a merge request pipeline (no CI_COMMIT_BRANCH)."""
    return {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": str(iid),
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": branch,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_MERGE_REQUEST_PROJECT_PATH": project,
        "CI_COMMIT_BRANCH": None,
    }


def run_with_gitlab(
    repo: Path,
    variables: Mapping[str, str],
    gitlab_url: str,
    jobs: Sequence[str] = (),
    predefined: Mapping[str, str | None] | None = None,
) -> str:
    """`run_pipeline` with the fake GitLab API as the server and `lead` as the user; the
    pipeline must pass. Its whole output."""
    result = run_pipeline(
        repo,
        variables,
        jobs=jobs,
        predefined={"CI_SERVER_URL": gitlab_url, "GITLAB_USER_LOGIN": "lead", **(predefined or {})},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


class GitLabProject:
    """A model repository on `project` and the pipelines GitLab (the fake API at
    `gitlab_url`) would run for it, as a platform's CI/CD variables and `token` allow."""

    def __init__(
        self, platform: LocalPlatform, gitlab_url: str, token: str, project: str, repo: Path
    ) -> None:
        self.platform, self.gitlab_url, self.project, self.repo = (
            platform,
            gitlab_url,
            project,
            repo,
        )
        self.variables = {**platform.ci_variables(), "MODELCI_GITLAB_TOKEN": token}

    def run(self, *jobs: str, **predefined: str | None) -> str:
        return run_with_gitlab(self.repo, self.variables, self.gitlab_url, jobs, predefined)

    def alias(self, model: str, stand: str) -> str | None:
        """The version the alias `stand` of the project's registered `model` points at."""
        from mlflow import MlflowClient

        registered = names_for(self.project, "main", model).registered_model
        found = MlflowClient(self.platform.mlflow.tracking_uri).get_registered_model(registered)
        return found.aliases.get(stand)
