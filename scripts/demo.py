"""The main job on the embedded default: a complete branch lifecycle of the example model
repository, run by the real CI templates (gitlab-ci-local, shell executor) against a local
MLflow server, a local S3 (SeaweedFS) and local git remotes for the DAG bundle and GitOps repos:
push, merge request note, merge (promotion to the first stand), manual promotion to
production, and the branch's stop job. GitLab's API cannot run here: the test suite's small
stand-in (tests/integration/fake_gitlab.py) answers the merge request calls.

Run it through scripts/demo.sh, which installs what it needs first. Everything it makes lives
under .demo/ in the repository (removed at the next run). With --keep the local services stay
up after the lifecycle, with their addresses printed, until Ctrl-C (or SIGTERM) stops them.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.gitremotes import STANDS_BRANCH, files_on, make_bare_repo  # noqa: E402
from tests.harness.lifecycle import (  # noqa: E402
    LocalPlatform,
    make_model_repo,
    merge_request_merged,
    publish_push_pipeline,
    run_pipeline,
)
from tests.harness.mlflowserver import start_mlflow  # noqa: E402
from tests.harness.s3server import start_seaweedfs  # noqa: E402
from tests.integration.fake_gitlab import FakeGitLab, running  # noqa: E402

PROJECT = "ml/churn"
BRANCH = "feature/better-churn"
MERGE_REQUEST = 1
DEMO_TOKEN = "glpat-local-demo"  # the local stand-in's token; no real GitLab is involved
WORKDIR = ROOT / ".demo"
KEEP_POLL_SECONDS = 1.0


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def show_repo(title: str, bare: Path) -> None:
    for branch, holds in (("main", "feature environments"), (STANDS_BRANCH, "stands")):
        files = sorted(files_on(bare, branch)) or ["(nothing yet)"]
        print(f"{title}, branch {branch} ({holds}):", *files, sep="\n  ", flush=True)


def run(
    repo: Path,
    platform: LocalPlatform,
    jobs: list[str],
    what: str,
    gitlab: FakeGitLab,
    **predefined: str | None,
) -> None:
    variables = {**platform.ci_variables(), "MODELCI_GITLAB_TOKEN": gitlab.token}
    predefined = {"CI_SERVER_URL": gitlab.url, **predefined}
    result = run_pipeline(repo, variables, jobs=jobs, predefined=predefined, capture=False)
    if result.returncode != 0:
        raise SystemExit(f"demo: {what} failed (exit {result.returncode}); see the log above")


def show_repos(platform: LocalPlatform) -> None:
    print()
    show_repo("DAG bundle repo", platform.dag_repo)
    show_repo("GitOps repo", platform.gitops_repo)


def _stop_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def write_platform_env(platform: LocalPlatform) -> Path:
    """The variables a shell needs to use the local MLflow and S3 (private to the user)."""
    path = WORKDIR / "platform.env"
    path.touch(mode=0o600)
    variables = {**platform.mlflow.env, "AWS_ENDPOINT_URL": platform.s3.endpoint_url}
    path.write_text(
        "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items()),
        encoding="utf-8",
    )
    return path


def keep_running(platform: LocalPlatform, repo: Path) -> None:
    """Print where everything is, then wait until Ctrl-C or until a service exits."""
    s3, mlflow = platform.s3, platform.mlflow
    env_file = write_platform_env(platform)
    python = ROOT / ".venv" / "bin" / "python"
    step("The local platform stays up (--keep): Ctrl-C stops it")
    print(
        f"MLflow UI        {mlflow.tracking_uri}  (experiment {PROJECT}/churn holds the runs)\n"
        f"S3 endpoint      {s3.endpoint_url}  (bucket {s3.bucket}, path-style)\n"
        f"DAG bundle repo  {platform.dag_repo}\n"
        f"                 git -C {platform.dag_repo} log --stat main\n"
        f"GitOps repo      {platform.gitops_repo}\n"
        f"                 git -C {platform.gitops_repo} log --stat main\n"
        f"Model repo       {repo}\n"
        f"Keys and URLs for a shell (made for this run only): source {env_file}\n"
        f"  then, e.g.: {python} -c \"import boto3; print([o['Key'] for o in "
        f"boto3.client('s3').list_objects_v2(Bucket='{s3.bucket}').get('Contents', [])])\"",
        flush=True,
    )
    processes = [p for p in (s3.process, mlflow.process) if p is not None]
    print("\nThe services are up; press Ctrl-C to stop them.", flush=True)
    while True:
        for process in processes:
            if process.exited():
                raise SystemExit(f"demo: {process.name} exited; see {process.log_path}")
        time.sleep(KEEP_POLL_SECONDS)


def lifecycle(repo: Path, platform: LocalPlatform, gitlab: FakeGitLab) -> None:
    gitlab.add_merge_request(PROJECT, BRANCH, MERGE_REQUEST)
    step(f"Push to {BRANCH}: validate, train, gate, resolve, deploy, report")
    run(repo, platform, [], "the push pipeline", gitlab)
    publish_push_pipeline(gitlab, repo, PROJECT)  # GitLab keeps its jobs' artifacts
    show_repos(platform)

    step(f"Merge request !{MERGE_REQUEST}: the candidate against the stands, as a note")
    run(
        repo,
        platform,
        [],
        "the merge request pipeline",
        gitlab,
        CI_PIPELINE_SOURCE="merge_request_event",
        CI_MERGE_REQUEST_IID=str(MERGE_REQUEST),
        CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=BRANCH,
        CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
        CI_COMMIT_BRANCH=None,
    )
    note = next(n for n in gitlab.notes[MERGE_REQUEST] if "modelci:compare" in n["body"])
    print(f"\nThe note on !{MERGE_REQUEST}:\n{note['body']}", flush=True)

    step(f"Merge !{MERGE_REQUEST}: the default branch's pipeline promotes it to staging")
    merge_request_merged(gitlab, repo, BRANCH, MERGE_REQUEST, "data-scientist")
    run(repo, platform, [], "the default branch's pipeline", gitlab)
    show_repos(platform)

    step("Manual job: promote to production the version staging serves")
    run(repo, platform, ["modelci-promote-production"], "the production promotion", gitlab)
    show_repos(platform)

    step(f"Branch {BRANCH} deleted: GitLab runs the environment's stop job")
    import git

    git.Repo(repo).git.checkout(BRANCH)
    run(repo, platform, ["modelci-stop"], "the stop job", gitlab)
    show_repos(platform)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after the lifecycle, keep MLflow, S3 and the git remotes up until Ctrl-C",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir()
    step("Starting the embedded platform: SeaweedFS S3, MLflow server, git remotes")
    s3 = mlflow = None
    done = False
    try:
        s3 = start_seaweedfs(WORKDIR / "s3")
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
        with running(DEMO_TOKEN) as gitlab:
            lifecycle(repo, platform, gitlab)
        elapsed = time.monotonic() - started
        step(
            f"Done in {elapsed:.0f} s: the branch environment was deployed, reported, compared "
            "with the stands, promoted to staging and production, and torn down"
        )
        done = True
        if args.keep:
            keep_running(platform, repo)
        return 0
    except KeyboardInterrupt:
        print("\nStopping the local services.", flush=True)
        return 0 if done else 130
    finally:
        if mlflow is not None and mlflow.process is not None:
            mlflow.process.stop()
        if s3 is not None and s3.process is not None:
            s3.process.stop()
        if args.keep and done:
            print(f"Stopped. Everything the demo made stays under {WORKDIR}.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
