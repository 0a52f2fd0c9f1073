"""The whole second half of the lifecycle through the real CI templates in gitlab-ci-local,
against the real MLflow, S3 and git remotes, with the fake GitLab API (fake_gitlab.py: a GitLab
server cannot run here) for merge requests and notes:

push a feature branch (environment up) -> merge request pipeline (note created) -> second push
and merge request pipeline (note updated in place) -> merge (staging serves the branch's run
as a registered version, no new run, branch environment stopped) -> manual promotion to
production -> a second branch merged and promoted -> rollback of production -> a chosen
version deployed from the "Run pipeline" form -> a branch deleted (stop job: its environment
goes, the stands stay).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import git
import pytest
from mlflow import MlflowClient

from modelci.config.naming import names_for
from tests.e2e.test_faults import job_states
from tests.harness.gitremotes import STANDS_BRANCH, files_on
from tests.harness.lifecycle import (
    PUSH_JOBS,
    LocalPlatform,
    commit_change,
    make_model_repo,
    merge_request_event,
    merge_request_merged,
    publish_push_pipeline,
    run_with_gitlab,
)
from tests.integration.fake_gitlab import FakeGitLab, running

PROJECT = "ml/churn-flow"
MODEL = "churn"
TOKEN = "glpat-e2e-secret-token"
FIRST, SECOND = "feature/better-churn", "feature/even-better"
REGISTERED = names_for(PROJECT, "main", MODEL).registered_model


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(TOKEN) as fake:
        yield fake


class Flow:
    def __init__(self, platform: LocalPlatform, gitlab: FakeGitLab, repo: Path) -> None:
        self.platform, self.gitlab, self.repo = platform, gitlab, repo
        self.variables = {**platform.ci_variables(), "MODELCI_GITLAB_TOKEN": TOKEN}

    def run(self, *jobs: str, **predefined: str | None) -> str:
        output = run_with_gitlab(self.repo, self.variables, self.gitlab.url, jobs, predefined)
        assert TOKEN not in output, "the GitLab token appears in the log"
        for secret in self.platform.s3.secret_keys:
            assert secret not in output, "an S3 key appears in the log"
        return output

    def checkout(self, branch: str, *, new: bool = False) -> None:
        repo = git.Repo(self.repo)
        repo.git.checkout(*(["-b"] if new else []), branch)
        repo.git.update_ref(f"refs/remotes/origin/{branch}", repo.head.commit.hexsha)

    def push(self, branch: str, change: str) -> str:
        commit_change(self.repo, f"{change}.txt", change, change)
        output = self.run()
        states = job_states(output)
        assert all(states.get(job) == "PASS" for job in PUSH_JOBS), states
        publish_push_pipeline(self.gitlab, self.repo, PROJECT)
        return output

    def merge_request_pipeline(self, branch: str, iid: int) -> str:
        return self.run(**merge_request_event(PROJECT, branch, iid))

    def merge(self, branch: str, iid: int) -> str:
        """Merge on the default branch (a merge commit), as GitLab would; the fake API then
        lists the merge request as merged, containing that commit."""
        merge_request_merged(self.gitlab, self.repo, branch, iid, "lead")
        return self.run()

    def alias(self, stand: str) -> str | None:
        client = MlflowClient(self.platform.mlflow.tracking_uri)
        return client.get_registered_model(REGISTERED).aliases.get(stand)

    def runs(self) -> int:
        client = MlflowClient(self.platform.mlflow.tracking_uri)
        experiment = client.get_experiment_by_name(f"{PROJECT}/{MODEL}")
        return len(client.search_runs([experiment.experiment_id]))

    def tree(self, bare: Path, branch: str = "main") -> set[str]:
        return files_on(bare, branch)


def compare_notes(gitlab: FakeGitLab, iid: int) -> list[dict]:
    return [note for note in gitlab.notes[iid] if COMPARE_MARKER in note["body"]]


COMPARE_MARKER = "<!-- modelci:compare"


def test_merge_request_to_production_and_back(
    platform: LocalPlatform, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    repo = make_model_repo(tmp_path / "model", project=PROJECT, branch=FIRST)
    flow = Flow(platform, gitlab, repo)
    gitlab.add_merge_request(PROJECT, FIRST, 1)
    first = names_for(PROJECT, FIRST, MODEL)

    flow.push(FIRST, "first-change")
    assert first.values_path in flow.tree(platform.gitops_repo)

    # Merge request pipeline: one comparison note.
    output = flow.merge_request_pipeline(FIRST, 1)
    assert job_states(output) == {"modelci-compare": "PASS"}, job_states(output)
    (note,) = compare_notes(gitlab, 1)
    assert "staging" in note["body"] and "```mermaid" in note["body"]

    # A second push and merge request pipeline: the same note, updated.
    flow.push(FIRST, "second-change")
    flow.merge_request_pipeline(FIRST, 1)
    (updated,) = compare_notes(gitlab, 1)
    assert updated["id"] == note["id"]
    runs = flow.runs()

    # The merge: staging serves the branch's newest run, registered; no retraining.
    output = flow.merge(FIRST, 1)
    assert job_states(output).get("modelci-promote-staging") == "PASS", job_states(output)
    assert flow.alias("staging") == "1"
    assert flow.runs() == runs
    staging = names_for(PROJECT, "main", MODEL, stand="staging")
    assert {staging.values_path, staging.dag_path("inference")} <= (
        flow.tree(platform.gitops_repo, STANDS_BRANCH) | flow.tree(platform.dag_repo, STANDS_BRANCH)
    )
    assert staging.values_path not in flow.tree(platform.gitops_repo)  # never with the branches'
    assert first.values_path not in flow.tree(platform.gitops_repo)  # branch environment stopped
    client = MlflowClient(platform.mlflow.tracking_uri)
    tags = client.get_model_version(REGISTERED, "1").tags
    assert tags["modelci.stand.staging.merge_request"].endswith("/-/merge_requests/1")
    assert tags["modelci.stand.staging.by"] == "lead"

    # Manual promotion to production.
    flow.run("modelci-promote-production")
    assert flow.alias("production") == "1"

    # A second branch, merged and promoted: production now has a version to go back from.
    flow.checkout(SECOND, new=True)
    gitlab.add_merge_request(PROJECT, SECOND, 2)
    flow.push(SECOND, "third-change")
    flow.merge(SECOND, 2)
    flow.run("modelci-promote-production")
    assert (flow.alias("staging"), flow.alias("production")) == ("2", "2")

    # Rollback of production: back to version 1, recorded.
    flow.run("modelci-rollback-production")
    assert flow.alias("production") == "1"
    assert (
        client.get_model_version(REGISTERED, "1").tags["modelci.stand.production.action"]
        == "rollback"
    )

    # A chosen version from the "Run pipeline" form.
    output = flow.run(
        CI_PIPELINE_SOURCE="web",
        MODELCI_DEPLOY_STAND="production",
        MODELCI_DEPLOY_MODEL=MODEL,
        MODELCI_DEPLOY_VERSION="2",
    )
    assert job_states(output) == {"modelci-deploy-version": "PASS"}, job_states(output)
    assert flow.alias("production") == "2"

    # A branch deleted: its stop job removes its environment; the stands stay.
    flow.checkout(SECOND)
    flow.push(SECOND, "fourth-change")  # the branch lives on after the merge, deployed again
    second = names_for(PROJECT, SECOND, MODEL)
    assert second.values_path in flow.tree(platform.gitops_repo)
    stands_before = flow.tree(platform.gitops_repo, STANDS_BRANCH)
    flow.run("modelci-stop")
    assert second.values_path not in flow.tree(platform.gitops_repo)
    production = names_for(PROJECT, "main", MODEL, stand="production")
    assert {staging.values_path, production.values_path} <= stands_before
    assert flow.tree(platform.gitops_repo, STANDS_BRANCH) == stands_before
    assert (flow.alias("staging"), flow.alias("production")) == ("2", "2")
