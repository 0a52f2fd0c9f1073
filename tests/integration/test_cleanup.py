"""The scheduled clean-up of what stop jobs missed, against real bare git remotes and S3, with
the fake GitLab API (fake_gitlab.py: a GitLab server cannot run here) listing the branches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from modelci.config.naming import environment_dirs, project_slug_of
from modelci.systems.gitrepo import Changes, RemoteRepo
from tests.harness.gitremotes import GitRemotes
from tests.harness.lifecycle import LocalPlatform
from tests.harness.mlflowserver import MlflowServer
from tests.harness.s3server import S3Server

from .fake_gitlab import FakeGitLab, running

PROJECT, OTHER = "ml/cleanup-test", "ml/cleanup-other"
TOKEN = "glpat-cleanup-secret"
LIVE, GONE = "feature/live", "feature/gone"


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(TOKEN) as fake:
        fake.branches = ["main", LIVE]  # GONE was deleted without its stop job running
        yield fake


@pytest.fixture
def platform(s3: S3Server, mlflow_server: MlflowServer, git_remotes: GitRemotes) -> LocalPlatform:
    platform = LocalPlatform(s3, mlflow_server, git_remotes.dags, git_remotes.gitops)
    scratch = platform.ci_variables()["MODELCI_SCRATCH_URI"].removeprefix(f"s3://{s3.bucket}/")
    for project, branch, stand in (
        (PROJECT, LIVE, None),
        (PROJECT, GONE, None),
        (PROJECT, "main", "production"),
        (OTHER, GONE, None),  # another project's environment of a branch of the same name
    ):
        dirs = environment_dirs(project, branch, stand=stand)
        for bare, top in ((git_remotes.dags, dirs.dag_dir), (git_remotes.gitops, dirs.gitops_dir)):
            RemoteRepo(str(bare), "main").apply(
                [top], lambda _r, top=top: Changes(writes={f"{top}/churn/x": b"x"}), "seed"
            )
        s3.client().put_object(
            Bucket=s3.bucket, Key=f"{scratch}/{dirs.s3_prefix}code/0.tar.gz", Body=b"code"
        )
    return platform


def cleanup(platform: LocalPlatform, gitlab: FakeGitLab, *args: str):
    return cleanup_with(platform, gitlab, {}, *args)


def cleanup_with(
    platform: LocalPlatform, gitlab: FakeGitLab, variables: dict[str, str], *args: str
):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MODELCI_", "AWS_"))}
    env.update(platform.ci_variables())
    env.update(variables)
    env.update(
        CI_PROJECT_PATH=PROJECT,
        CI_COMMIT_REF_NAME="main",
        CI_DEFAULT_BRANCH="main",
        CI_COMMIT_SHA="0" * 40,
        CI_PIPELINE_SOURCE="schedule",
        CI_SERVER_URL=gitlab.url,
        MODELCI_GITLAB_TOKEN=TOKEN,
    )
    result = subprocess.run(
        [sys.executable, "-m", "modelci", "cleanup", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert TOKEN not in result.stdout + result.stderr
    assert platform.s3.secret_key not in result.stdout + result.stderr
    return result


def state(platform: LocalPlatform) -> tuple[str, str, frozenset[str]]:
    """The tips of both repos and every S3 key: what a clean-up could change."""
    client = platform.s3.client()
    keys = client.list_objects_v2(Bucket=platform.s3.bucket).get("Contents", [])
    return (
        git.Repo(platform.dag_repo).commit("main").hexsha,
        git.Repo(platform.gitops_repo).commit("main").hexsha,
        frozenset(item["Key"] for item in keys),
    )


def files(bare: Path) -> set[str]:
    return set(git.Repo(bare).git.ls_tree("-r", "--name-only", "main").splitlines())


def test_dry_run_then_removal_of_exactly_the_environments_whose_branch_is_gone(
    platform: LocalPlatform, gitlab: FakeGitLab
) -> None:
    gone = environment_dirs(PROJECT, GONE)
    before = state(platform)

    dry = cleanup(platform, gitlab, "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would remove") == 1
    assert f"would remove {gone.environment} (DAG bundle repo, GitOps repo, S3 scratch)" in (
        dry.stdout
    )
    assert state(platform) == before

    real = cleanup(platform, gitlab)

    assert real.returncode == 0, real.stderr
    after = state(platform)
    dags, gitops = files(platform.dag_repo), files(platform.gitops_repo)
    assert not any(p.startswith(gone.dag_dir + "/") for p in dags)
    assert not any(p.startswith(gone.gitops_dir + "/") for p in gitops)
    assert not any(f"/{gone.s3_prefix}" in key for key in after[2])
    for project, branch, stand in (
        (PROJECT, LIVE, None),
        (PROJECT, "main", "production"),
        (OTHER, GONE, None),
    ):
        kept = environment_dirs(project, branch, stand=stand)
        assert f"{kept.dag_dir}/churn/x" in dags and f"{kept.gitops_dir}/churn/x" in gitops
        assert any(f"/{kept.s3_prefix}" in key for key in after[2])
    for bare, tip in ((platform.dag_repo, before[0]), (platform.gitops_repo, before[1])):
        assert [c.hexsha for c in git.Repo(bare).commit("main").parents] == [tip]  # one commit

    again = cleanup(platform, gitlab)

    assert again.returncode == 0 and "0 stale" in again.stdout
    assert state(platform) == after


@pytest.mark.parametrize("failure", ["500", "hang", "empty"])
def test_a_branch_list_that_cannot_be_trusted_removes_nothing(
    platform: LocalPlatform, gitlab: FakeGitLab, failure: str
) -> None:
    if failure == "500":
        gitlab.fail_with(500)
    elif failure == "hang":
        gitlab.hang(60)
    else:
        gitlab.branches = []  # an empty page where branches exist
    before = state(platform)

    started = time.monotonic()
    result = cleanup(platform, gitlab)

    assert result.returncode == 1
    assert time.monotonic() - started < 40
    assert "Nothing was removed" in result.stderr or "nothing is removed" in result.stderr
    assert "Traceback" not in result.stderr
    assert state(platform) == before


def test_environment_archives_nothing_refers_to_go_after_the_retention(
    platform: LocalPlatform, gitlab: FakeGitLab
) -> None:
    """Each project's archives live in <scratch>/envs/<project slug>/<key>/; each deployed
    environment records the archives its DAGs run in. Its own scratch here: the session's S3
    holds other tests' archives."""
    bucket, client = platform.s3.bucket, platform.s3.client()
    scratch = "archive-cleanup-scratch"
    keys = {name: f"py3.11-{name * 20}" for name in ("a", "b", "c", "d")}
    owners = {"a": PROJECT, "b": PROJECT, "c": OTHER, "d": PROJECT}

    def cache(name: str) -> str:
        return f"{scratch}/envs/{project_slug_of(owners[name])}/{keys[name]}"

    for name in keys:
        for file in ("environment.tar.gz", "requirements.lock"):
            client.put_object(Bucket=bucket, Key=f"{cache(name)}/{file}", Body=b"x")
    users = {
        (PROJECT, LIVE): "a",  # a live branch of this project
        (PROJECT, GONE): "b",  # this project's branch that is gone
        (OTHER, GONE): "c",  # another project's environment: its branch list is not ours
    }
    for (project, branch), name in users.items():
        prefix = environment_dirs(project, branch).s3_prefix
        record = f"s3://{bucket}/{cache(name)}/environment.tar.gz\n"
        client.put_object(Bucket=bucket, Key=f"{scratch}/{prefix}env-archives.txt", Body=record)
    stand_copy = f"{scratch}/{environment_dirs(PROJECT, 'main', stand='production').s3_prefix}"
    stand_copy += f"envs/{keys['d']}/environment.tar.gz"
    client.put_object(Bucket=bucket, Key=stand_copy, Body=b"x")
    # A scratch of its own lies outside what the platform's branch keys may write: the
    # operator's keys here (the policy itself is exercised by the tests on modelci-scratch).
    ours = {"MODELCI_SCRATCH_URI": f"s3://{bucket}/{scratch}", **platform.s3.env}

    def archives() -> set[str]:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{scratch}/envs/")
        return {item["Key"].split("/")[3] for item in listed.get("Contents", [])}

    # Only this project's cache: "in use" leaves out the gone branch's environment (its record
    # goes with it); the other project's archive is neither counted nor touched.
    recent = cleanup_with(platform, gitlab, ours, "--dry-run")
    assert recent.returncode == 0, recent.stderr
    assert "3 found, 1 in use by deployed environments, 0 unused and older than 14 days" in (
        recent.stdout
    )
    aged = {**ours, "MODELCI_ENV_RETENTION_DAYS": "0"}
    before = state(platform)
    dry = cleanup_with(platform, gitlab, aged, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove archive {keys['b']}" in dry.stdout  # its environment goes now
    assert f"would remove archive {keys['d']}" in dry.stdout
    assert dry.stdout.count("would remove archive") == 2
    assert state(platform) == before

    done = cleanup_with(platform, gitlab, aged)
    assert done.returncode == 0, done.stderr
    assert archives() == {keys["a"], keys["c"]}
    assert client.head_object(Bucket=bucket, Key=stand_copy)  # a stand's copy is its own
