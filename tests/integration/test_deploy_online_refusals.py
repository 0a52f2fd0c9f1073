"""deploy-online refuses values KServe would reject before anything reaches the GitOps repo:
the message names the field, the exit code is non-zero and the repo keeps its commit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import git
import pytest

from tests.harness.tools import ROOT, VENV_BIN

CI = {
    "CI_PROJECT_PATH": "ml/churn",
    "CI_COMMIT_REF_NAME": "feature/x",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "CI_PIPELINE_ID": "42",
}


def deploy_online(repo: Path, gitops: Path, storage_uri: str) -> subprocess.CompletedProcess:
    state = repo / ".modelci" / "churn" / "resolve.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"run_id": "r1", "storage_uri": storage_uri}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MODELCI_"))},
        **CI,
        "MODELCI_GITOPS_REPO_URL": gitops.as_uri(),
    }
    return subprocess.run(
        [str(VENV_BIN / "modelci"), "deploy-online"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return Path(shutil.copytree(ROOT / "examples" / "churn", tmp_path / "churn"))


@pytest.mark.parametrize(
    "storage_uri",
    ["", "file:///tmp/model", "mlflow-artifacts:/1/models/m-1/artifacts"],
    ids=["empty", "file", "unmapped-proxy"],
)
def test_values_kserve_cannot_serve_are_refused_before_any_commit(
    repo: Path, git_remotes, storage_uri: str
) -> None:
    before = git.Repo(git_remotes.gitops).commit("main").hexsha

    result = deploy_online(repo, git_remotes.gitops, storage_uri)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "storageUri" in result.stderr
    assert "Traceback" not in result.stderr
    assert git.Repo(git_remotes.gitops).commit("main").hexsha == before


def test_valid_values_are_committed_once(repo: Path, git_remotes) -> None:
    uri = "s3://mlops/mlflow-artifacts/1/models/m-1/artifacts"
    first = deploy_online(repo, git_remotes.gitops, uri)
    second = deploy_online(repo, git_remotes.gitops, uri)

    assert first.returncode == 0, first.stderr
    assert "committed" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "already up to date, no commit" in second.stdout
    assert int(git.Repo(git_remotes.gitops).git.rev_list("--count", "main")) == 2
