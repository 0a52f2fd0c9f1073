"""Paths of the tools ``scripts/bootstrap.sh`` installs into this checkout."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

VENV_BIN = ROOT / ".venv" / "bin"
VENV_PYTHON = VENV_BIN / "python"
MLFLOW_BIN = VENV_BIN / "mlflow"
WEED_BIN = VENV_BIN / "weed"

AIRFLOW_BIN_DIR = ROOT / ".venv-airflow" / "bin"
AIRFLOW_PYTHON = AIRFLOW_BIN_DIR / "python"
AIRFLOW_BIN = AIRFLOW_BIN_DIR / "airflow"

MLSERVER_BIN = ROOT / ".venv-mlserver" / "bin" / "mlserver"

GITLAB_CI_LOCAL = ROOT / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"


def require(path: Path) -> Path:
    """Return ``path``, failing the test when it is missing.

    A missing tool fails rather than skips: in CI it means a broken install, not an
    optional feature.
    """
    if not path.exists():
        pytest.fail(
            f"{path} is missing: run scripts/bootstrap.sh (it installs every tool the tests use)",
            pytrace=False,
        )
    return path
