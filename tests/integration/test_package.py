"""What the job image installs: the built wheel carries the CLI, the DAG template and the
chart, and works outside this repository."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from tests.harness.tools import ROOT, VENV_PYTHON

CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import modelci, modelci.values as values
assert modelci.__file__.startswith(sys.argv[1]), modelci.__file__
schema = values.values_schema()
print(values.chart_dir(), sorted(schema["required"]))
"""


def test_wheel_carries_chart_and_templates_and_works_without_the_repo(tmp_path: Path) -> None:
    subprocess.run(
        [str(VENV_PYTHON), "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", tmp_path],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("modelci-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "modelci/cli.py",
        "modelci/commands/train.py",
        "modelci/templates/dag.py.j2",
        "modelci/chart/Chart.yaml",
        "modelci/chart/values.schema.json",
        "modelci/chart/templates/inferenceservice.yaml",
    } <= names
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)

    result = subprocess.run(
        [str(VENV_PYTHON), "-c", CHECK, str(installed)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(installed / "modelci" / "chart"))
    assert "storageUri" in result.stdout
