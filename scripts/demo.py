"""The main job on the embedded default: a complete branch lifecycle of the example model
repository (or, with --repo, of your own), run by the real CI templates (gitlab-ci-local,
shell executor) against a local MLflow server, a local S3 (SeaweedFS) and local git remotes
for the DAG bundle and GitOps repos: push, merge request note, merge (promotion to the first
stand), manual promotion to the last stand, and the branch's stop job. GitLab's API cannot
run here: the test suite's small stand-in (tests/integration/fake_gitlab.py) answers the
merge request calls.

Run it through scripts/demo.sh, which installs what it needs first. Everything it makes lives
under .demo/ in the repository (removed at the next run). With --keep the local services stay
up after the lifecycle, with their addresses printed, until Ctrl-C (or SIGTERM) stops them.

With --repo DIR the lifecycle runs on a copy of your model repository instead of
examples/churn: its committed files when DIR is a git checkout (HEAD), else the folder as it
is. It needs the repository's `.gitlab-ci.yml` to include this library's templates and its
`mlops.yaml` to validate; the last stand is promoted by its manual job.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelci.config.mlops import load_config  # noqa: E402
from modelci.errors import ModelciError  # noqa: E402
from tests.harness.gitremotes import STANDS_BRANCH, files_on, make_bare_repo  # noqa: E402
from tests.harness.lifecycle import (  # noqa: E402
    EXAMPLE_REPO,
    LocalPlatform,
    library_include,
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
GETTING_STARTED = "docs/data-scientists/getting-started.md"
MERGE_REQUEST = 1
DEMO_TOKEN = "glpat-local-demo"  # the local stand-in's token; no real GitLab is involved
WORKDIR = ROOT / ".demo"
KEEP_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Demo:
    """What the lifecycle runs on: the model repository, its GitLab project path, its stands."""

    source: Path
    project: str
    stands: tuple[str, ...]


def demo_for(source: Path, project: str) -> Demo:
    """The demo of a model repository, or the reason it cannot run (SystemExit, exit 2)."""
    if not source.is_dir():
        raise SystemExit(f"demo: --repo {source}: no such folder")
    if not (source / "mlops.yaml").is_file():
        raise SystemExit(f"demo: --repo {source}: no mlops.yaml; see {GETTING_STARTED}")
    try:
        library_include(source)
    except (OSError, StopIteration, KeyError, TypeError, AttributeError):
        raise SystemExit(
            f"demo: {source / '.gitlab-ci.yml'}: no `include: - project: ...` of this library's "
            f"templates; copy the one in {GETTING_STARTED}"
        ) from None
    try:
        config = load_config(source / "mlops.yaml")
    except ModelciError as error:
        raise SystemExit(f"demo: the repository's config does not validate:\n{error}") from None
    return Demo(
        source=source,
        project=project,
        stands=tuple(stand.name for stand in config.stands),
    )


def promoted_to(demo: Demo) -> str:
    first, last = demo.stands[0], demo.stands[-1]
    return first if first == last else f"{first} and {last}"


def committed_copy(source: Path, into: Path) -> Path:
    """A git checkout's HEAD as plain files (what a push would carry), else the folder itself."""
    inside = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "--show-toplevel"], capture_output=True, text=True
    )
    if inside.returncode != 0 or Path(inside.stdout.strip()) != source.resolve():
        return source
    into.mkdir(parents=True)
    with tempfile.TemporaryFile() as archive:
        subprocess.run(["git", "-C", str(source), "archive", "HEAD"], stdout=archive, check=True)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(into, filter="data")
    return into


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


def keep_running(platform: LocalPlatform, repo: Path, demo: Demo) -> None:
    """Print where everything is, then wait until Ctrl-C or until a service exits."""
    s3, mlflow = platform.s3, platform.mlflow
    env_file = write_platform_env(platform)
    python = ROOT / ".venv" / "bin" / "python"
    step("The local platform stays up (--keep): Ctrl-C stops it")
    print(
        f"MLflow UI        {mlflow.tracking_uri}  (experiments {demo.project}/<model>)\n"
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


def lifecycle(repo: Path, platform: LocalPlatform, gitlab: FakeGitLab, demo: Demo) -> None:
    first, last = demo.stands[0], demo.stands[-1]
    gitlab.add_merge_request(demo.project, BRANCH, MERGE_REQUEST)
    step(f"Push to {BRANCH}: validate, train, gate, resolve, deploy, report")
    run(repo, platform, [], "the push pipeline", gitlab)
    publish_push_pipeline(gitlab, repo, demo.project)  # GitLab keeps its jobs' artifacts
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

    step(f"Merge !{MERGE_REQUEST}: the default branch's pipeline promotes it to {first}")
    merge_request_merged(gitlab, repo, BRANCH, MERGE_REQUEST, "data-scientist")
    run(repo, platform, [], "the default branch's pipeline", gitlab)
    show_repos(platform)

    if last != first:
        step(f"Manual job: promote to {last} the version {first} serves")
        run(repo, platform, [f"modelci-promote-{last}"], f"the {last} promotion", gitlab)
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
    parser.add_argument(
        "--repo",
        type=Path,
        default=EXAMPLE_REPO,
        help="your model repository (default: examples/churn)",
    )
    parser.add_argument(
        "--project",
        help="its GitLab project path (default: ml/<the folder's name>; ml/churn for the example)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    source = args.repo.resolve()
    project = args.project or (PROJECT if source == EXAMPLE_REPO else f"ml/{source.name}")
    demo = demo_for(source, project)
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
        files = committed_copy(source, WORKDIR / "source")
        repo = make_model_repo(
            WORKDIR / source.name, project=demo.project, branch=BRANCH, example=files
        )
        with running(DEMO_TOKEN) as gitlab:
            lifecycle(repo, platform, gitlab, demo)
        elapsed = time.monotonic() - started
        step(
            f"Done in {elapsed:.0f} s: the branch environment was deployed, reported, compared "
            f"with the stands, promoted to {promoted_to(demo)}, and torn down"
        )
        done = True
        if args.keep:
            keep_running(platform, repo, demo)
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
