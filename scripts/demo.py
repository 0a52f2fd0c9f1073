"""The main job on the embedded default: a complete branch lifecycle of the example model
repository, run by the real CI templates (gitlab-ci-local, shell executor) against a local
MLflow server, a local S3 (SeaweedFS) and local git remotes for the DAG bundle and GitOps repos.

Run it through scripts/demo.sh, which installs what it needs first. Everything it makes lives
under .demo/ in the repository (removed at the next run).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.gitremotes import make_bare_repo  # noqa: E402
from tests.harness.lifecycle import LocalPlatform, make_model_repo, run_pipeline  # noqa: E402
from tests.harness.mlflowserver import start_mlflow  # noqa: E402
from tests.harness.s3server import start_seaweedfs  # noqa: E402

PROJECT = "ml/churn"
BRANCH = "feature/better-churn"
WORKDIR = ROOT / ".demo"


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def list_files(bare: Path) -> list[str]:
    import git

    return sorted(
        item.path for item in git.Repo(bare).commit("main").tree.traverse() if item.type == "blob"
    )


def run(repo: Path, platform: LocalPlatform, jobs: list[str], what: str) -> None:
    result = run_pipeline(repo, platform.ci_variables(), jobs=jobs, capture=False)
    if result.returncode != 0:
        raise SystemExit(f"demo: {what} failed (exit {result.returncode}); see the log above")


def main() -> int:
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir()
    step("Starting the embedded platform: SeaweedFS S3, MLflow server, git remotes")
    s3 = start_seaweedfs(WORKDIR / "s3")
    mlflow = None
    try:
        mlflow = start_mlflow(WORKDIR / "mlflow", s3)
        platform = LocalPlatform(
            s3=s3,
            mlflow=mlflow,
            dag_repo=make_bare_repo(WORKDIR / "remotes" / "dags.git"),
            gitops_repo=make_bare_repo(WORKDIR / "remotes" / "gitops.git"),
        )
        print(f"S3 {s3.endpoint_url}, MLflow {mlflow.tracking_uri}")
        print(f"DAG bundle repo {platform.dag_repo}\nGitOps repo {platform.gitops_repo}")
        repo = make_model_repo(WORKDIR / "churn", project=PROJECT, branch=BRANCH)

        step(f"Push to {BRANCH}: validate, train, gate, resolve, deploy, report")
        run(repo, platform, [], "the push pipeline")
        print("\nDAG bundle repo now holds:", *list_files(platform.dag_repo), sep="\n  ")
        print("GitOps repo now holds:", *list_files(platform.gitops_repo), sep="\n  ")

        step(f"Branch {BRANCH} merged or deleted: GitLab runs the environment's stop job")
        run(repo, platform, ["modelci-stop"], "the stop job")
        print("\nDAG bundle repo now holds:", *list_files(platform.dag_repo), sep="\n  ")
        print("GitOps repo now holds:", *list_files(platform.gitops_repo), sep="\n  ")
        step("Done: the branch environment was deployed, reported and torn down")
        return 0
    finally:
        if mlflow is not None and mlflow.process is not None:
            mlflow.process.stop()
        if s3.process is not None:
            s3.process.stop()


if __name__ == "__main__":
    sys.exit(main())
