"""The scheduled clean-up through the real templates: a scheduled pipeline on the default
branch runs only the cleanup job, which (dry run first) removes the environment of a branch
that was deleted without its stop job, and keeps the live branch's, the stand's and another
project's. GitLab's branch list comes from the fake API (fake_gitlab.py)."""

from __future__ import annotations

from pathlib import Path

import git

from modelci.gitrepo import Changes, RemoteRepo
from modelci.naming import environment_dirs
from tests.e2e.test_faults import job_states
from tests.harness.lifecycle import LocalPlatform, make_model_repo, run_pipeline
from tests.integration.fake_gitlab import running

PROJECT = "ml/scheduled"
LIVE, GONE = "feature/live", "feature/deleted-without-stop"


def seed(platform: LocalPlatform, project: str, branch: str, stand: str | None = None) -> str:
    dirs = environment_dirs(project, branch, stand=stand)
    top = dirs.gitops_dir
    RemoteRepo(str(platform.gitops_repo), "main").apply(
        [top], lambda _read: Changes(writes={f"{top}/churn/values.yaml": b"x: 1\n"}), "seed"
    )
    return f"{top}/churn/values.yaml"


def test_a_scheduled_pipeline_cleans_up_what_a_missed_stop_job_left(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    kept = [
        seed(platform, PROJECT, LIVE),
        seed(platform, PROJECT, "main", stand="production"),
        seed(platform, "ml/other-project", GONE),
    ]
    gone = seed(platform, PROJECT, GONE)
    repo = make_model_repo(tmp_path / "model", project=PROJECT, branch=LIVE)
    git.Repo(repo).git.checkout("main")

    def scheduled(**variables: str) -> str:
        with running("glpat-schedule-secret") as gitlab:
            gitlab.branches = ["main", LIVE]
            result = run_pipeline(
                repo,
                {**platform.ci_variables(), "MODELCI_GITLAB_TOKEN": gitlab.token, **variables},
                predefined={"CI_PIPELINE_SOURCE": "schedule", "CI_SERVER_URL": gitlab.url},
            )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-5000:]
        assert job_states(output) == {"modelci-cleanup": "PASS"}, job_states(output)
        assert "glpat-schedule-secret" not in output
        return output

    def files() -> set[str]:
        return set(git.Repo(platform.gitops_repo).git.ls_tree("-r", "--name-only", "main").split())

    dry = scheduled(MODELCI_CLEANUP_DRY_RUN="true")
    assert f"would remove {environment_dirs(PROJECT, GONE).environment}" in dry
    assert gone in files()

    scheduled()
    assert gone not in files()
    assert set(kept) <= files()
