"""A feature branch cannot touch a stand: the two-credential setup of the README, end to end.

The DAG bundle and GitOps repos are served over HTTP with GitLab's access rules (the stands
branch protected, only the stand token's user may push it: tests/harness/githttp.py, real git
behind it), and MLflow runs its own basic-auth app (every user reads, a registered model is
written only by those with a permission on it). The feature-branch steps hold the branch
credentials only, as an unprotected ref does; the promote job on the default branch also gets
the protected ones. Any developer can change what a branch's job runs, so the branch
credentials are also tried directly: they can neither push the stands branch nor move an alias.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from modelci.config.naming import environment_dirs, names_for
from modelci.errors import ModelciError
from modelci.systems.gitrepo import Changes, RemoteRepo
from tests.e2e.test_faults import model_repo, modelci, shared_state
from tests.e2e.test_promotion import FEATURE_STEPS, ok, on_main
from tests.harness.githttp import PROTECTED_MESSAGE, GitHttpServer, protect, serving
from tests.harness.gitremotes import STANDS_BRANCH, files_on, make_bare_repo
from tests.harness.lifecycle import NEIGHBOURS, SEAL_KEY, LocalPlatform
from tests.harness.mlflowserver import AUTH_ADMIN, start_mlflow

PROJECT = "ml/guarded"
MODEL = "churn"
BRANCH = "feature/guarded"
REGISTERED = names_for(PROJECT, "main", MODEL).registered_model
BRANCH_TOKEN = "glpat-branch-developer-token"  # unprotected CI/CD variables
STAND_TOKEN = "glpat-stand-maintainer-token"  # protected CI/CD variables
MLFLOW_USERS = {"branches": "branch-password-1234", "stands": "stand-password-12345"}


@dataclass(frozen=True)
class Guarded:
    platform: LocalPlatform
    server: GitHttpServer

    @property
    def branch_variables(self) -> dict[str, str]:
        """What every job gets, an unprotected ref's feature-branch jobs included."""
        return {
            "MODELCI_DAG_REPO_URL": self.server.repo_url(self.platform.dag_repo),
            "MODELCI_GITOPS_REPO_URL": self.server.repo_url(self.platform.gitops_repo),
            "MODELCI_DAG_REPO_TOKEN": BRANCH_TOKEN,
            "MODELCI_GITOPS_REPO_TOKEN": BRANCH_TOKEN,
            "MLFLOW_TRACKING_USERNAME": "branches",
            "MLFLOW_TRACKING_PASSWORD": MLFLOW_USERS["branches"],
            # An unprotected ref gets none of the protected variables.
            "MODELCI_STANDS_AWS_ACCESS_KEY_ID": "",
            "MODELCI_STANDS_AWS_SECRET_ACCESS_KEY": "",
            "MODELCI_STANDS_SEAL_KEY": "",
        }

    @property
    def stand_variables(self) -> dict[str, str]:
        """What a job on the protected default branch gets on top."""
        return {
            **self.branch_variables,
            "MODELCI_STANDS_AWS_ACCESS_KEY_ID": self.platform.s3.identity("stands").access_key,
            "MODELCI_STANDS_AWS_SECRET_ACCESS_KEY": self.platform.s3.identity("stands").secret_key,
            "MODELCI_STANDS_DAG_REPO_TOKEN": STAND_TOKEN,
            "MODELCI_STANDS_GITOPS_REPO_TOKEN": STAND_TOKEN,
            "MODELCI_STANDS_MLFLOW_TRACKING_USERNAME": "stands",
            "MODELCI_STANDS_MLFLOW_TRACKING_PASSWORD": MLFLOW_USERS["stands"],
            "MODELCI_STANDS_SEAL_KEY": SEAL_KEY,
        }


@pytest.fixture
def guarded(s3, tmp_path: Path) -> Iterator[Guarded]:
    remotes = tmp_path / "remotes"
    repos = [make_bare_repo(remotes / name, NEIGHBOURS) for name in ("dags.git", "gitops.git")]
    for bare in repos:
        protect(bare, {STANDS_BRANCH: {"stand-deployer"}, "main": {"developer", "stand-deployer"}})
    mlflow = start_mlflow(tmp_path / "mlflow", s3, users=MLFLOW_USERS)
    tokens = {BRANCH_TOKEN: "developer", STAND_TOKEN: "stand-deployer"}
    try:
        with serving(remotes, tokens) as server:
            yield Guarded(LocalPlatform(s3, mlflow, *repos), server)
    finally:
        mlflow.process.stop()


def mlflow_as(
    monkeypatch: pytest.MonkeyPatch, guarded: Guarded, user: str, password: str
) -> MlflowClient:
    """A client whose requests carry `user`'s credentials (MLflow reads them per request)."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    return MlflowClient(guarded.platform.mlflow.tracking_uri)


def stands_tips(platform: LocalPlatform) -> list[str]:
    return [
        git.Repo(bare).commit(STANDS_BRANCH).hexsha
        for bare in (platform.dag_repo, platform.gitops_repo)
    ]


def test_a_feature_branch_cannot_touch_a_stand(
    guarded: Guarded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = guarded.platform
    repo = model_repo(tmp_path, PROJECT, branch=BRANCH)
    for step in FEATURE_STEPS:  # the branch credentials are all a feature branch needs
        ok(modelci(platform, repo, step, **guarded.branch_variables))
    assert repo.names.values_path in files_on(platform.gitops_repo)
    main = on_main(repo)

    # The promote job without the protected variables (as on an unprotected ref): refused
    # before anything is written, and it says which variables are missing.
    before = shared_state(platform)
    refused = modelci(platform, main, "promote", "--branch", BRANCH, **guarded.branch_variables)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "MODELCI_STANDS_MLFLOW_TRACKING_" in refused.stderr
    assert "stand credentials (protected CI/CD variables) in this job: none" in refused.stdout
    assert shared_state(platform) == before

    # With them, staging serves the branch's run.
    output = ok(modelci(platform, main, "promote", "--branch", BRANCH, **guarded.stand_variables))
    assert "staging now serves version 1" in output
    assert BRANCH_TOKEN not in output and STAND_TOKEN not in output
    staging = names_for(PROJECT, "main", MODEL, stand="staging")
    assert staging.values_path in files_on(platform.gitops_repo, STANDS_BRANCH)
    assert staging.dag_path("inference") in files_on(platform.dag_repo, STANDS_BRANCH)
    tips = stands_tips(platform)

    # A branch job whose code was changed: with the branch token it cannot rewrite, remove or
    # delete the stands branch of either repo ...
    monkeypatch.setenv("BRANCH_TOKEN", BRANCH_TOKEN)
    for bare, path in (
        (platform.gitops_repo, staging.gitops_dir),
        (platform.dag_repo, environment_dirs(PROJECT, "main", stand="staging").dag_dir),
    ):
        stands = RemoteRepo(guarded.server.repo_url(bare), STANDS_BRANCH, token_env="BRANCH_TOKEN")
        with pytest.raises(ModelciError, match=PROTECTED_MESSAGE) as refusal:
            stands.apply([path], lambda _read, path=path: Changes(removes=[path]), "take over")
        assert BRANCH_TOKEN not in str(refusal.value)
        url = guarded.server.repo_url(bare).replace("http://", f"http://oauth2:{BRANCH_TOKEN}@")
        deleted = subprocess.run(
            ["git", "push", url, f":refs/heads/{STANDS_BRANCH}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert deleted.returncode != 0 and PROTECTED_MESSAGE in deleted.stderr
    # ... nor move the stand's alias, drop it, or rewrite the audit trail.
    as_branch = mlflow_as(monkeypatch, guarded, "branches", MLFLOW_USERS["branches"])
    attempts = [
        lambda: as_branch.set_registered_model_alias(REGISTERED, "staging", "1"),
        lambda: as_branch.delete_registered_model_alias(REGISTERED, "staging"),
        lambda: as_branch.set_model_version_tag(REGISTERED, "1", "modelci.stand.staging.by", "me"),
        lambda: as_branch.create_model_version(REGISTERED, "models:/m-x", "0" * 32),
    ]
    for attempt in attempts:
        with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
            attempt()

    assert stands_tips(platform) == tips
    as_admin = mlflow_as(monkeypatch, guarded, *AUTH_ADMIN)
    assert as_admin.get_registered_model(REGISTERED).aliases == {"staging": "1"}
    tags = as_admin.get_model_version(REGISTERED, "1").tags
    assert tags["modelci.stand.staging.action"] == "promote"
