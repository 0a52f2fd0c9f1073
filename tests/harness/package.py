"""The modelci package as the job image installs it: the wheel built from a copy of this
checkout's files (as a clone has them), in a fresh virtualenv, with its runtime dependencies
from PyPI and the uv the Dockerfile pins.

The virtualenv stands in for the image's Python: the Dockerfile pip-installs uv and then the
package into one interpreter, and so does `product_venv`. It is cached under `.cache/` (git
ignored) by the wheel's content, the uv pin and the Python version, so a re-run with an
unchanged package skips the install; an older cached virtualenv is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

from modelci.lifecycle.modelenv import one_maker
from tests.harness.tools import ROOT, VENV_PYTHON

DOCKERFILE = ROOT / "Dockerfile"
CACHE_DIR = ROOT / ".cache" / "package-venv"
UV_CACHE_DIR = ROOT / ".cache" / "uv"
COMPLETE_MARKER = ".complete"
INSTALL_TIMEOUT_SECONDS = 900
# What a job inherits from the runner must not decide what the product finds.
_DROPPED_PREFIXES = ("MLFLOW_", "AWS_", "CI_", "GITLAB_", "MODELCI_", "UV_", "PIP_")
_DROPPED = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "CI"}
_UV_PIN = re.compile(r"\bpip install\b[^\n]*?\buv==([0-9][0-9A-Za-z.]*)")


def repository_files(root: Path = ROOT) -> list[str]:
    """What a clone of the work tree holds: tracked files and untracked ones git would track
    (not ignored), so uncommitted work counts; a tracked file deleted in the work tree does not."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    return sorted(name for name in listing.split("\0") if name and os.path.lexists(root / name))


def copy_repository(target: Path, root: Path = ROOT) -> Path:
    """The repository's files (see `repository_files`) copied to `target`, links kept as links.

    Nothing else: no build/ left over from an earlier build, no virtualenv, no cache.
    """
    for name in repository_files(root):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination, follow_symlinks=False)
    return target


def build_wheel(source: Path, dest: Path) -> Path:
    """`pip wheel --no-deps` of the project at `source`, as `pip install` builds it."""
    dest.mkdir(parents=True, exist_ok=True)
    _run([str(VENV_PYTHON), "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(dest)])
    (wheel,) = dest.glob("modelci-*.whl")
    return wheel


def wheel_digest(wheel: Path) -> str:
    """A hash of the wheel's file names and contents (not of the zip, whose dates vary)."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(archive.read(name)).digest())
    return digest.hexdigest()


def dockerfile_uv_version(dockerfile: Path = DOCKERFILE) -> str:
    """The uv version the job image pins (`pip install ... uv==X`)."""
    match = _UV_PIN.search(dockerfile.read_text(encoding="utf-8"))
    if match is None:
        raise AssertionError(f"{dockerfile} installs no pinned uv (`pip install uv==X`)")
    return match.group(1)


def product_venv(wheel: Path, dockerfile: Path = DOCKERFILE) -> Path:
    """A virtualenv holding uv and `wheel` with its runtime dependencies, as in the image."""
    uv_version = dockerfile_uv_version(dockerfile)
    key = hashlib.sha256(
        f"{wheel_digest(wheel)} uv=={uv_version} {sys.version}".encode()
    ).hexdigest()[:16]
    venv = CACHE_DIR / key
    # Test workers that need it at once: one installs, the others wait and then find it
    # (instead of removing each other's half-made venv below).
    with one_maker(CACHE_DIR.parent, CACHE_DIR.name):
        if not (venv / COMPLETE_MARKER).exists():
            _install_product(venv, wheel, uv_version)
    return venv


def _install_product(venv: Path, wheel: Path, uv_version: str) -> None:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for old in CACHE_DIR.iterdir():
        shutil.rmtree(old, ignore_errors=True)  # earlier packages, or a broken install
    # The new venv is based on the interpreter behind the dev .venv, not on the .venv itself.
    _run([str(VENV_PYTHON), "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pip.append("--disable-pip-version-check")
    _run([*pip, f"uv=={uv_version}"], env=clean_env(venv))
    _run([*pip, str(wheel)], env=clean_env(venv))
    (venv / COMPLETE_MARKER).write_text(wheel.name + "\n", encoding="utf-8")


def installed_distributions(venv: Path) -> dict[str, str]:
    """{normalized distribution name: version} of what `venv` has installed."""
    script = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    result = _run([str(venv / "bin" / "python"), "-c", script], env=clean_env(venv))
    return {normalize(name): version for name, version in json.loads(result.stdout).items()}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def clean_env(venv: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment with `venv/bin` first on PATH and nothing of this checkout's tools.

    PATH keeps the system's directories (git lives there, as in the image) but drops every
    directory inside this checkout (.venv, .venv-airflow, .tools), so a command the product
    runs can only come from the product's virtualenv or the system.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _DROPPED and not key.startswith(_DROPPED_PREFIXES)
    }
    system_path = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not Path(entry).resolve().is_relative_to(ROOT)
    ]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *system_path])
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # the image's ENV
    env["UV_CACHE_DIR"] = str(UV_CACHE_DIR)  # git-ignored; keeps re-runs fast
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra or {})
    return env


def _run(
    command: list[str], *, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result
