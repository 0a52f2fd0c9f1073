"""A clone on its own: the repository's files and nothing beside them.

A user's clone has only what git tracks. The files `git clone` would give (here: what git
tracks plus what it would track, untracked but not ignored, so uncommitted work counts) are
copied into a directory with no sibling, and the tests that read upstream schemas run there
with this checkout's dev virtualenv. They must pass reading only `tests/schemas/`, and no
file may point outside the repository at a schema folder beside it.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.harness.package import copy_repository, repository_files
from tests.harness.tools import ROOT, VENV_PYTHON

SCHEMA_TESTS = (
    "tests/unit/test_argocd.py",
    "tests/unit/test_chart.py",
    "tests/unit/test_ci_schema.py",
)
# The one file that may name the build machine's schema folder: it says where they came from.
PROVENANCE = "tests/schemas/README.md"
# The schema folder beside the repository, as a path or as a pathlib join of its two parts
# (the pattern is written so that it does not match itself).
SHARED_SCHEMAS = re.compile(r"""shared["']?\s*/\s*["']?schemas""")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repository(tmp_path_factory.mktemp("alone") / "modelci")


def test_the_clone_has_nothing_beside_it(clone: Path) -> None:
    assert [p.name for p in clone.parent.iterdir()] == ["modelci"]
    assert (clone / "tests" / "schemas").is_dir()


def test_schema_tests_pass_in_the_clone(clone: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    # The dev .venv installs modelci in editable mode from this checkout: the clone's own
    # package must win, so that the chart and templates come from the clone.
    env["PYTHONPATH"] = str(clone / "scripts")
    where = subprocess.run(
        [
            str(VENV_PYTHON),
            "-c",
            "import modelci.render.values as v; print(v.chart_dir().resolve())",
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(clone), where

    result = subprocess.run(
        [str(VENV_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", *SCHEMA_TESTS],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    summary = result.stdout.strip().splitlines()[-1:] or [""]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", summary[0]) and "skipped" not in summary[0], summary


def test_no_file_points_at_a_schema_folder_beside_the_repo() -> None:
    offenders = []
    for name in repository_files():
        path = ROOT / name
        if name == PROVENANCE or path.is_symlink() or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        offenders += [
            f"{name}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), 1)
            if SHARED_SCHEMAS.search(line)
        ]
    assert not offenders, "\n".join(offenders)
