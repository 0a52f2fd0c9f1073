"""Three new teams, each with a model repository written from the README alone (tests/repos/:
plain MLflow code, their own requirements, flavors and layouts, no `stands:` block), go the
whole way through the real CI templates in gitlab-ci-local: push -> merge request -> merge,
where the pipeline is green and the first stand serves the branch's model as the merge request
note promised -> manual promotion to the last stand. The fake GitLab API (fake_gitlab.py)
stands in for GitLab's, which cannot run here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelci.config.naming import names_for
from tests.e2e.test_faults import job_states
from tests.harness.gitremotes import STANDS_BRANCH, files_on
from tests.harness.lifecycle import (
    PUSH_JOBS,
    GitLabProject,
    LocalPlatform,
    commit_change,
    make_model_repo,
    merge_request_event,
    merge_request_merged,
    publish_push_pipeline,
)
from tests.integration.fake_gitlab import FakeGitLab, running

REPOS = Path(__file__).resolve().parents[1] / "repos"
TOKEN = "glpat-new-team-token"
BRANCH = "feature/first-model"
TEAMS = ("house-prices", "fraud-score", "ticket-triage")


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(TOKEN) as fake:
        yield fake


def team(platform: LocalPlatform, gitlab: FakeGitLab, name: str, where: Path) -> GitLabProject:
    """One team's model repository, a copy of tests/repos/<name>, on a feature branch."""
    project = f"teams/{name}"
    repo = make_model_repo(where / name, project=project, branch=BRANCH, example=REPOS / name)
    return GitLabProject(platform, gitlab.url, TOKEN, project, repo)


@pytest.mark.parametrize("name", TEAMS)
def test_a_new_team_goes_from_push_to_the_last_stand(
    platform: LocalPlatform, gitlab: FakeGitLab, tmp_path: Path, name: str
) -> None:
    project = team(platform, gitlab, name, tmp_path)
    gitlab.add_merge_request(project.project, BRANCH, 1)

    commit_change(project.repo, "NOTES.md", "first model\n", "First model")
    states = job_states(project.run())
    assert all(states.get(job) == "PASS" for job in PUSH_JOBS), states
    publish_push_pipeline(gitlab, project.repo, project.project)

    states = job_states(project.run(**merge_request_event(project.project, BRANCH, 1)))
    assert states == {"modelci-compare": "PASS"}, states
    (note,) = [n["body"] for n in gitlab.notes[1] if "<!-- modelci:compare" in n["body"]]
    assert "staging` will serve version **1**" in note, note

    # The merge: every job of the default branch's pipeline passes, staging serves version 1.
    merge_request_merged(gitlab, project.repo, BRANCH, 1, "lead")
    states = job_states(project.run())
    assert states.get("modelci-promote-staging") == "PASS", states
    assert "FAIL" not in states.values(), states
    assert (project.alias(name, "staging"), project.alias(name, "production")) == ("1", None)

    states = job_states(project.run("modelci-promote-production"))
    assert states == {"modelci-promote-production": "PASS"}, states
    assert project.alias(name, "production") == "1"
    stands = files_on(platform.gitops_repo, STANDS_BRANCH) | files_on(
        platform.dag_repo, STANDS_BRANCH
    )
    for stand in ("staging", "production"):
        names = names_for(project.project, "main", name, stand=stand)
        config = project.repo / "mlops.yaml"
        if "online:" in config.read_text():
            assert names.values_path in stands
        if "kind: inference" in config.read_text():
            assert names.dag_path("inference") in stands
