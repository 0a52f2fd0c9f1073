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
from mlflow import MlflowClient

from modelci.naming import names_for
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

REPOS = Path(__file__).resolve().parents[1] / "repos"
TOKEN = "glpat-new-team-token"
BRANCH = "feature/first-model"
TEAMS = ("house-prices", "fraud-score", "ticket-triage")


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(TOKEN) as fake:
        yield fake


class Team:
    """One team's model repository and the pipelines GitLab would run for it."""

    def __init__(self, platform: LocalPlatform, gitlab: FakeGitLab, name: str, where: Path):
        self.platform, self.gitlab, self.name = platform, gitlab, name
        self.project = f"teams/{name}"
        self.repo = make_model_repo(
            where / name, project=self.project, branch=BRANCH, example=REPOS / name
        )
        self.variables = {**platform.ci_variables(), "MODELCI_GITLAB_TOKEN": TOKEN}

    def run(self, *jobs: str, **predefined: str | None) -> dict[str, str]:
        return job_states(
            run_with_gitlab(self.repo, self.variables, self.gitlab.url, jobs, predefined)
        )

    def alias(self, stand: str) -> str | None:
        registered = names_for(self.project, "main", self.name).registered_model
        model = MlflowClient(self.platform.mlflow.tracking_uri).get_registered_model(registered)
        return model.aliases.get(stand)


@pytest.mark.parametrize("name", TEAMS)
def test_a_new_team_goes_from_push_to_the_last_stand(
    platform: LocalPlatform, gitlab: FakeGitLab, tmp_path: Path, name: str
) -> None:
    team = Team(platform, gitlab, name, tmp_path)
    gitlab.add_merge_request(team.project, BRANCH, 1)

    commit_change(team.repo, "NOTES.md", "first model\n", "First model")
    states = team.run()
    assert all(states.get(job) == "PASS" for job in PUSH_JOBS), states
    publish_push_pipeline(gitlab, team.repo, team.project)

    states = team.run(**merge_request_event(team.project, BRANCH, 1))
    assert states == {"modelci-compare": "PASS"}, states
    (note,) = [n["body"] for n in gitlab.notes[1] if "<!-- modelci:compare" in n["body"]]
    assert "staging` will serve version **1**" in note, note

    # The merge: every job of the default branch's pipeline passes, staging serves version 1.
    merge_request_merged(gitlab, team.repo, BRANCH, 1, "lead")
    states = team.run()
    assert states.get("modelci-promote-staging") == "PASS", states
    assert "FAIL" not in states.values(), states
    assert (team.alias("staging"), team.alias("production")) == ("1", None)

    states = team.run("modelci-promote-production")
    assert states == {"modelci-promote-production": "PASS"}, states
    assert team.alias("production") == "1"
    stands = files_on(platform.gitops_repo, STANDS_BRANCH) | files_on(
        platform.dag_repo, STANDS_BRANCH
    )
    for stand in ("staging", "production"):
        names = names_for(team.project, "main", team.name, stand=stand)
        config = team.repo / "mlops.yaml"
        if "online:" in config.read_text():
            assert names.values_path in stands
        if "kind: inference" in config.read_text():
            assert names.dag_path("inference") in stands
