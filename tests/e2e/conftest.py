"""The platform every end-to-end test runs against: real S3 and MLflow (session fixtures) and
fresh bare repos for the DAG bundle and GitOps repos, already holding another project's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.gitremotes import make_bare_repo
from tests.harness.lifecycle import NEIGHBOURS, LocalPlatform
from tests.harness.tools import GITLAB_CI_LOCAL, require


@pytest.fixture
def platform(s3, mlflow_server, tmp_path: Path) -> LocalPlatform:
    require(GITLAB_CI_LOCAL)
    remotes = tmp_path / "remotes"
    return LocalPlatform(
        s3=s3,
        mlflow=mlflow_server,
        dag_repo=make_bare_repo(remotes / "dags.git", NEIGHBOURS),
        gitops_repo=make_bare_repo(remotes / "gitops.git", NEIGHBOURS),
    )
