"""The model's own environment, built for real with uv from PyPI: the model's pins win inside
it, modelci's environment never changes, one build per content, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelci.errors import ModelciError
from modelci.modelenv import COMPLETE_MARKER, ensure_environment, environment_key

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# Versions other than the ones modelci's own environment has (see test below).
CONFLICTING = {
    "scikit-learn": "1.6.1",
    "numpy": "2.2.6",
    "ruamel.yaml": "0.17.40",  # modelci itself needs >=0.18
}
REQUIREMENTS = "mlflow-skinny==3.17.2\n" + "".join(f"{n}=={v}\n" for n, v in CONFLICTING.items())
VERSIONS = (
    "import importlib.metadata as m, sys;"
    "print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))"
)


def installed(python: Path | str, *packages: str) -> str:
    return subprocess.run(
        [str(python), "-c", VERSIONS, *packages], capture_output=True, text=True, check=True
    ).stdout.strip()


def freeze(python: Path | str) -> str:
    return subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_models_pins_win_in_its_environment_and_modelci_is_untouched(tmp_path: Path) -> None:
    ours = installed(sys.executable, *CONFLICTING)
    assert all(f"{n}=={v}" not in ours for n, v in CONFLICTING.items()), ours
    before = freeze(sys.executable)
    requirements = write(tmp_path / "requirements.txt", REQUIREMENTS)

    env = ensure_environment(PYTHON, requirements, tmp_path / "cache")

    assert env.built
    assert installed(env.python, *CONFLICTING) == " ".join(
        f"{n}=={v}" for n, v in CONFLICTING.items()
    )
    assert freeze(sys.executable) == before
    assert env.path == tmp_path / "cache" / environment_key(PYTHON, requirements.read_bytes())


def test_unchanged_requirements_reuse_the_environment(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\n")
    first = ensure_environment(PYTHON, requirements, tmp_path / "cache")
    marker = (first.path / COMPLETE_MARKER).stat().st_mtime_ns

    second = ensure_environment(PYTHON, requirements, tmp_path / "cache")

    assert (first.built, second.built) == (True, False)
    assert second.path == first.path
    assert (second.path / COMPLETE_MARKER).stat().st_mtime_ns == marker
    write(requirements, "mlflow-skinny==3.17.2\n# another line, another environment\n")
    assert ensure_environment(PYTHON, requirements, tmp_path / "cache").built


def test_two_jobs_building_the_same_environment_at_once_both_succeed(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\n")
    cache = tmp_path / "cache"

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: ensure_environment(PYTHON, requirements, cache), [1, 2]))

    assert results[0].path == results[1].path
    assert sorted(p.name for p in cache.iterdir()) == [results[0].key]  # no leftovers
    assert installed(results[0].python, "mlflow-skinny") == "mlflow-skinny==3.17.2"


def test_the_environment_runs_from_another_path(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\n")
    env = ensure_environment(PYTHON, requirements, tmp_path / "cache")
    moved = env.path.rename(tmp_path / "elsewhere")

    result = subprocess.run(
        [str(moved / "bin" / "python"), "-c", "import mlflow, sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(moved)


def test_an_unresolvable_requirement_names_the_package_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    requirements = write(
        tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\nscikit-learn==0.0.404\n"
    )

    with pytest.raises(ModelciError) as raised:
        ensure_environment(PYTHON, requirements, tmp_path / "cache")

    message = str(raised.value)
    assert "requirements.txt cannot be installed" in message
    assert "scikit-learn==0.0.404" in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_requirements_without_mlflow_are_refused_with_the_fix(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "six==1.16.0\n")

    with pytest.raises(ModelciError, match=r"does not install mlflow.*add a line"):
        ensure_environment(PYTHON, requirements, tmp_path / "cache")


def test_a_python_version_that_is_not_installed_is_named(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\n")

    with pytest.raises(ModelciError, match=r'Python 3\.99 \(`python: "3\.99"`'):
        ensure_environment("3.99", requirements, tmp_path / "cache")


def test_a_missing_requirements_file_says_what_to_add(tmp_path: Path) -> None:
    with pytest.raises(ModelciError, match=r"requirements\.txt does not exist.*listing mlflow"):
        ensure_environment(PYTHON, tmp_path / "requirements.txt", tmp_path / "cache")
