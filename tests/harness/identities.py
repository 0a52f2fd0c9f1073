"""The S3 identities a platform configures for modelci, as data: the test stack starts SeaweedFS
with exactly these, and the set-up page (docs/platform/setup.md) shows the same
(`tests/unit/test_readme_policy.py` compares them).

SeaweedFS's `s3.json` grants an action on a bucket (`Write:mlops`) or on keys matching a glob
(`Write:mlops/modelci-scratch/stands/*`, where `*` also matches `/`); an entry with a path and
no wildcard matches nothing. With AWS IAM the same policy is one statement per line below
(`s3:PutObject`/`s3:DeleteObject` on `arn:aws:s3:::mlops/modelci-scratch/stands/*`, ...).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SCRATCH_PREFIX = "modelci-scratch"  # MODELCI_SCRATCH_URI = s3://<bucket>/modelci-scratch
ARTIFACTS_PREFIX = "mlflow-artifacts"  # the MLflow server's --artifacts-destination
ALL_PROJECTS = "*"


@dataclass(frozen=True)
class S3Identity:
    name: str
    actions: tuple[str, ...]
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(9).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30), repr=False)

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": list(self.actions),
        }

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


def operator(bucket: str) -> S3Identity:
    """The platform team's own key: creates the bucket; the tests inspect and tamper with it."""
    return S3Identity("operator", ("Admin", "Read", "List", "Tagging", "Write"))


def mlflow_server(bucket: str) -> S3Identity:
    """The MLflow server's: it proxies every artifact, so only it writes them."""
    return S3Identity(
        "mlflow-server",
        (f"Read:{bucket}", f"List:{bucket}", f"Write:{bucket}/{ARTIFACTS_PREFIX}/*"),
    )


def branches(bucket: str, project_slug: str = ALL_PROJECTS) -> S3Identity:
    """One project's feature-branch jobs (AWS_ACCESS_KEY_ID, unprotected): its own feature
    environments and its own cache of environment archives. `ALL_PROJECTS` gives one key for every
    project's branches (what the tests at large run with; a platform makes one per project)."""
    name = "branches" if project_slug == ALL_PROJECTS else f"branches-{project_slug}"
    return S3Identity(
        name,
        (
            f"Read:{bucket}",
            f"List:{bucket}",
            f"Write:{bucket}/{SCRATCH_PREFIX}/branches/{project_slug}/*",
            f"Write:{bucket}/{SCRATCH_PREFIX}/envs/{project_slug}/*",
        ),
    )


def stands(bucket: str) -> S3Identity:
    """The stand jobs' (MODELCI_STANDS_AWS_ACCESS_KEY_ID, protected): every stand's own prefix,
    and the branches' (a merge stops the merged branch's environment)."""
    return S3Identity(
        "stands", (f"Read:{bucket}", f"List:{bucket}", f"Write:{bucket}/{SCRATCH_PREFIX}/*")
    )


def write_s3_config(path: Path, identities: Iterable[S3Identity]) -> None:
    path.write_text(json.dumps({"identities": [i.as_json() for i in identities]}, indent=2))
    path.chmod(0o600)
