"""Does the model's environment match the libraries the model was logged with?

MLflow records the model's pip requirements in `requirements.txt` beside `MLmodel`; the model's
environment has a lock (`requirements.lock`, exact versions). A package pinned in both with
another major or minor version may fail to load the model, or load it and predict differently
(scikit-learn only warns), so a deploy refuses it. Pure functions: the caller reads the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#,]+)")


@dataclass(frozen=True)
class Mismatch:
    package: str
    logged: str  # the version MLflow recorded with the model
    environment: str  # the version in the model's environment


def pinned_versions(text: str) -> dict[str, str]:
    """{normalized name: version} of the `name==version` lines of a requirements text."""
    pins = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[_normalized(match.group(1))] = match.group(2)
    return pins


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def mismatches(logged_requirements: str, lock: str) -> list[Mismatch]:
    """Packages pinned in both whose major or minor versions differ, by name."""
    logged, locked = pinned_versions(logged_requirements), pinned_versions(lock)
    return [
        Mismatch(name, logged[name], locked[name])
        for name in sorted(logged.keys() & locked.keys())
        if _major_minor(logged[name]) != _major_minor(locked[name])
    ]
