"""A RandomForest logged by MLflow's sklearn flavor in its default format (skops) fails in
`mlflow.sklearn.log_model`: skops does not trust the trees' type. The train job says what to
change in the training script, naming the types; the script changed that way trains. Real
`modelci train`, the example's model environment (mlflow, scikit-learn, skops as pinned),
real MLflow and S3."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import git
import pytest

from tests.harness.gitremotes import make_bare_repo
from tests.harness.lifecycle import EXAMPLE_REPO, LocalPlatform, commit_change, make_model_repo
from tests.harness.tools import VENV_BIN

TREE = "sklearn.tree._tree.Tree"
FOREST_TRAIN = """\
import mlflow
import mlflow.sklearn
import sklearn
import skops
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

features, labels = make_classification(n_samples=200, n_features=8, random_state=0)
model = RandomForestClassifier(n_estimators=5, random_state=0).fit(features, labels)
with mlflow.start_run():
    mlflow.log_metric("accuracy", model.score(features, labels))
    mlflow.sklearn.log_model(
        model,
        name="model",
        pip_requirements=[
            f"scikit-learn=={{sklearn.__version__}}", f"skops=={{skops.__version__}}"
        ],
        {extra}
    )
"""


@pytest.fixture
def platform(s3, mlflow_server, tmp_path: Path) -> LocalPlatform:
    remotes = tmp_path / "remotes"
    return LocalPlatform(
        s3,
        mlflow_server,
        make_bare_repo(remotes / "dags.git"),
        make_bare_repo(remotes / "gitops.git"),
    )


def forest_repo(tmp_path: Path, extra: str) -> Path:
    repo = make_model_repo(tmp_path / "model", project="tests/skops", branch="feature/forest")
    commit_change(repo, "train_forest.py", FOREST_TRAIN.format(extra=extra), "A forest")
    config = (EXAMPLE_REPO / "mlops.yaml").read_text(encoding="utf-8")
    config = config.replace("entrypoint: train.py", "entrypoint: train_forest.py")
    commit_change(repo, "mlops.yaml", config, "Train the forest")
    return repo


def train(platform: LocalPlatform, repo: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "AWS_", "CI_", "MODELCI_"))
    }
    env.update(platform.ci_variables())
    del env["MODELCI_SCRATCH_URI"]  # no archive of the model's environment: not the point here
    env.update(
        CI_PROJECT_PATH="tests/skops",
        CI_COMMIT_REF_NAME="feature/forest",
        CI_COMMIT_SHA=git.Repo(repo).head.commit.hexsha,
        CI_PIPELINE_ID="11",
    )
    return subprocess.run(
        [str(VENV_BIN / "modelci"), "train"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_forest_in_skops_format_fails_train_with_the_change_to_make(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    failed = train(platform, forest_repo(tmp_path / "default", extra=""))

    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    assert f"Untrusted types found in the file: ['{TREE}']" in failed.stderr  # MLflow's own
    error = failed.stderr[failed.stderr.index("modelci train: error:") :]
    assert "train_forest.py exited with code 1" in error
    assert f'skops_trusted_types=["{TREE}"]' in error
    assert "mlflow.sklearn.log_model(model, name='model', skops_trusted_types=" in error
    assert "serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE" in error

    trusted = train(
        platform, forest_repo(tmp_path / "trusted", extra=f'skops_trusted_types=["{TREE}"],')
    )
    assert trusted.returncode == 0, trusted.stdout[-3000:] + trusted.stderr[-3000:]
    assert "skops_trusted_types" not in trusted.stderr
