"""A cap on live branch environments, through the real templates: a push that would exceed it
is refused by the validate job, naming the live environments, before anything is trained or
written."""

from __future__ import annotations

from pathlib import Path

from modelci.config.naming import environment_dirs
from modelci.systems.gitrepo import Changes, RemoteRepo
from tests.e2e.test_faults import EXAMPLE_REPO, model_repo, refused_by_validate
from tests.harness.lifecycle import LocalPlatform

PROJECT = "ml/capped"
CAPPED_CI = (
    (EXAMPLE_REPO / ".gitlab-ci.yml")
    .read_text(encoding="utf-8")
    .replace(
        "      config: mlops.yaml\n", "      config: mlops.yaml\n      max_branch_environments: 1\n"
    )
)


def test_a_push_beyond_the_cap_is_refused_before_training(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    assert "max_branch_environments: 1" in CAPPED_CI
    live = environment_dirs(PROJECT, "feature/already-live")
    RemoteRepo(str(platform.gitops_repo), "main").apply(
        [live.gitops_dir],
        lambda _read: Changes(writes={f"{live.gitops_dir}/churn/values.yaml": b"x: 1\n"}),
        "another branch of the project is live",
    )
    repo = model_repo(tmp_path, PROJECT, files={".gitlab-ci.yml": CAPPED_CI})
    output = refused_by_validate(platform, repo)
    assert f"{PROJECT} already has 1 live branch environments" in output
    assert live.environment in output
