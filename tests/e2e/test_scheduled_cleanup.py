"""The scheduled clean-up through the real templates, on environments the pipeline steps really
deployed (DAGs, values, code archives in S3, a stand): two projects, one of which lost a
branch without its stop job running. The scheduled pipeline on the default branch runs only
the cleanup job: the dry run names exactly that environment and writes nothing, the real run
removes it in one commit per repo and leaves the live branch, the stand and the other project
(which has a branch of the same name, still alive) alone, and a second run changes nothing.
GitLab's branch list comes from the fake API (fake_gitlab.py)."""

from __future__ import annotations

import re
from pathlib import Path

import git

from tests.e2e.test_faults import ModelRepo, job_states, model_repo, modelci, shared_state
from tests.e2e.test_promotion import ok, on_branch_from_main, on_main, push_branch
from tests.harness.gitremotes import STANDS_BRANCH, files_on
from tests.harness.lifecycle import LocalPlatform, run_pipeline
from tests.integration.fake_gitlab import running

PROJECT, OTHER = "ml/swept", "ml/swept-other"
SHIPPED, LIVE, GONE = "feature/shipped", "feature/live", "feature/deleted-without-stop"
TOKEN = "glpat-schedule-secret"


def deployed(platform: LocalPlatform, repo: ModelRepo) -> dict[str, bool]:
    """Which parts of the branch environment of `repo` exist."""
    names = repo.names
    dag_dir = f"dags/{names.project_slug}/{names.environment}/"
    scratch = platform.s3.client().list_objects_v2(
        Bucket=platform.s3.bucket, Prefix=f"modelci-scratch/{names.s3_prefix}"
    )
    return {
        "DAG files": any(path.startswith(dag_dir) for path in files_on(platform.dag_repo)),
        "GitOps directory": names.values_path in files_on(platform.gitops_repo),
        "S3 scratch": bool(scratch.get("Contents")),
    }


def tips(platform: LocalPlatform, branch: str = "main") -> list[str]:
    return [
        git.Repo(bare).commit(branch).hexsha for bare in (platform.dag_repo, platform.gitops_repo)
    ]


def test_a_scheduled_pipeline_cleans_up_what_a_missed_stop_job_left(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    repo = model_repo(tmp_path / "a", PROJECT, branch=SHIPPED)
    ok(
        modelci(
            platform, on_main(push_branch(platform, repo, SHIPPED)), "promote", "--branch", SHIPPED
        )
    )
    live = push_branch(platform, on_branch_from_main(repo), LIVE)
    gone = push_branch(platform, on_branch_from_main(repo), GONE)
    other = push_branch(platform, model_repo(tmp_path / "b", OTHER), GONE)
    assert all(deployed(platform, gone).values()) and all(deployed(platform, other).values())
    stands = tips(platform, STANDS_BRANCH)
    main_checkout = on_branch_from_main(repo).path

    def scheduled(**variables: str) -> str:
        with running(TOKEN) as gitlab:
            gitlab.branches = ["main", LIVE]  # SHIPPED was merged and GONE deleted
            result = run_pipeline(
                main_checkout,
                {**platform.ci_variables(), "MODELCI_GITLAB_TOKEN": TOKEN, **variables},
                predefined={"CI_PIPELINE_SOURCE": "schedule", "CI_SERVER_URL": gitlab.url},
            )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-5000:]
        assert job_states(output) == {"modelci-cleanup": "PASS"}, job_states(output)
        assert TOKEN not in output
        return output

    before = shared_state(platform)
    dry = scheduled(MODELCI_CLEANUP_DRY_RUN="true")
    assert set(re.findall(r"would remove (\S+)", dry)) == {gone.names.environment}
    assert shared_state(platform) == before

    main_before = tips(platform)
    scheduled()
    assert deployed(platform, gone) == dict.fromkeys(deployed(platform, gone), False)
    for bare, tip in zip((platform.dag_repo, platform.gitops_repo), main_before, strict=True):
        assert [parent.hexsha for parent in git.Repo(bare).commit("main").parents] == [tip]
    assert all(deployed(platform, live).values())
    assert all(deployed(platform, other).values())  # same branch name, another project
    assert tips(platform, STANDS_BRANCH) == stands

    after = shared_state(platform)
    scheduled()
    assert shared_state(platform) == after  # nothing left to remove: no commit, no deletion
