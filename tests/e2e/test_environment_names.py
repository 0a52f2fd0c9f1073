"""One GitLab environment per branch, through the real templates: branches whose names differ
only in case or a trailing character share GitLab's `CI_COMMIT_REF_SLUG`, so an environment
named from it would be shared (and with it the stop job GitLab runs when one branch goes).
Named from the branch itself, each has its own; stopping one leaves the others running."""

from __future__ import annotations

import re
from pathlib import Path

import git

from tests.e2e.test_faults import ModelRepo, job_states, model_repo, pipeline
from tests.harness.gitremotes import files_on
from tests.harness.lifecycle import LocalPlatform

PROJECT = "ml/lookalikes"
BRANCHES = ("feature/a", "feature/A", "feature/a-")


def gitlab_environments(output: str) -> dict[str, str]:
    """{job: environment name} as gitlab-ci-local reports the jobs' environments."""
    found = re.findall(r"^(\S+) environment: \{ name: ([^,}]*?)(?:,.*)? \}$", output, re.MULTILINE)
    return dict(found)


def test_lookalike_branches_get_their_own_gitlab_environments(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, PROJECT, branch=BRANCHES[0])
    checkout = git.Repo(repo.path)
    on = {}
    for branch in BRANCHES:
        checkout.git.checkout("-B", branch)
        on[branch] = ModelRepo(repo.path, PROJECT, branch)
        code, output = pipeline(platform, on[branch])
        assert code == 0, output[-4000:]
        assert gitlab_environments(output)["modelci-report"] == f"review/{branch}"
        assert on[branch].names.values_path in files_on(platform.gitops_repo)

    # GitLab runs the stop job of the deleted branch's environment: the one of its pipeline.
    checkout.git.checkout(BRANCHES[0])
    code, output = pipeline(platform, on[BRANCHES[0]], jobs=("modelci-stop",))
    assert job_states(output) == {"modelci-stop": "PASS"}, output[-4000:]
    assert gitlab_environments(output)["modelci-stop"] == f"review/{BRANCHES[0]}"
    live = files_on(platform.gitops_repo)
    assert on[BRANCHES[0]].names.values_path not in live
    assert {on[b].names.values_path for b in BRANCHES[1:]} <= live
