"""The model's own Python environment: built from the model repository's requirements with uv,
kept apart from the environment `modelci` runs in.

A model repository may pin any scikit-learn, numpy or boto3 it likes: those pins go into a
virtualenv of their own, made with the `python:` version of `mlops.yaml`, and the model's
code runs with that virtualenv's Python. `modelci`'s own packages never change.

Environments are keyed by content (the Python version and the requirements file's bytes) and
kept under a cache directory, so an unchanged requirements file is built once per cache. A
build happens in a private directory that is renamed into place when complete, so two jobs
building the same key at once both succeed and one environment remains. uv is used for speed
(a cached install takes seconds) and because it makes relocatable virtualenvs. uv never
downloads a Python here: the version must be installed where the job runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelciError, redact_url

COMPLETE_MARKER = ".modelci-complete"
KEY_DIGITS = 20
BUILD_TIMEOUT_SECONDS = 1800
ENV_CACHE_VARIABLE = "MODELCI_ENV_CACHE"
REQUIRED_MODULE = "mlflow"  # the training script logs with it; `modelci` does not lend its own


@dataclass(frozen=True)
class ModelEnvironment:
    key: str
    path: Path
    built: bool  # False when an earlier job had built it already

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def bin_dir(self) -> Path:
        return self.path / "bin"


def environment_key(python_version: str, requirements: bytes) -> str:
    """Content key of an environment: same Python and same requirements, same key."""
    digest = hashlib.sha256()
    digest.update(f"python={python_version}\0".encode())
    digest.update(requirements)
    return f"py{python_version}-{digest.hexdigest()[:KEY_DIGITS]}"


def default_cache_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if env.get(ENV_CACHE_VARIABLE):
        return Path(env[ENV_CACHE_VARIABLE])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelci" / "envs"


def ensure_environment(
    python_version: str, requirements_path: Path, cache_dir: Path
) -> ModelEnvironment:
    """The environment for these requirements, built now unless the cache already has it."""
    if not requirements_path.is_file():
        raise ModelciError(
            f"{requirements_path} does not exist: the model's environment is built from it. "
            f"Add it, listing {REQUIRED_MODULE} and the libraries train.py imports "
            "(or name another file with the template's `requirements` input)"
        )
    key = environment_key(python_version, requirements_path.read_bytes())
    final = cache_dir / key
    if (final / COMPLETE_MARKER).is_file():
        return ModelEnvironment(key, final, built=False)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=cache_dir))
    try:
        _build(python_version, requirements_path, staging)
        (staging / COMPLETE_MARKER).write_text(key + "\n", encoding="utf-8")
        _move_into_place(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ModelEnvironment(key, final, built=True)


def _move_into_place(staging: Path, final: Path) -> None:
    """Rename the finished build to its key; a concurrent build that won the race is kept."""
    if final.exists() and not (final / COMPLETE_MARKER).is_file():
        shutil.rmtree(final, ignore_errors=True)  # left by a build that was killed midway
    try:
        staging.rename(final)
    except OSError:
        if not (final / COMPLETE_MARKER).is_file():
            raise


def _build(python_version: str, requirements_path: Path, target: Path) -> None:
    _uv(
        ["venv", "--quiet", "--allow-existing", "--relocatable", "--python", python_version],
        target,
        failure=(
            f'Python {python_version} (`python: "{python_version}"` in mlops.yaml) is not '
            "installed where this job runs. Use the Python version of the job image, or a job "
            "image that has this one"
        ),
    )
    python = str(target / "bin" / "python")
    _uv(
        ["pip", "install", "--quiet", "--python", python, "-r", str(requirements_path)],
        target,
        failure=(
            f"the requirements in {requirements_path.name} cannot be installed (the reason is "
            "above). Fix the named package or version"
        ),
    )
    check = subprocess.run(
        [str(target / "bin" / "python"), "-c", f"import {REQUIRED_MODULE}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise ModelciError(
            f"{requirements_path.name} does not install {REQUIRED_MODULE}, which the training "
            f"script needs to log its run and model: add a line such as `{REQUIRED_MODULE}` "
            "(pinned like the platform's MLflow server) to it"
        )


def _uv(arguments: list[str], target: Path, *, failure: str) -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    env.pop("VIRTUAL_ENV", None)
    command = [_uv_binary(), *arguments]
    if arguments[0] == "venv":
        command.append(str(target))
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        detail = redact_url((result.stderr or result.stdout).strip())
        raise ModelciError(f"{failure}.\nuv said:\n{detail}")


def _uv_binary() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        found = shutil.which("uv")
        if found:
            return found
        raise ModelciError(
            "uv is not installed beside modelci; install the modelci package with its "
            "dependencies (the job image has it)"
        ) from None
    return find_uv_bin()
