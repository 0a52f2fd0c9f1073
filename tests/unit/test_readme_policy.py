"""The S3 policy of the platform set-up page (docs/platform/setup.md) is the one the test stack
runs: the same identities, the same actions, so a platform team copying it gets exactly what
the attack suite was shown against."""

from __future__ import annotations

import json
import re

from tests.harness import identities
from tests.harness.s3server import BUCKET
from tests.harness.tools import ROOT


def readme_identities() -> list[dict]:
    text = (ROOT / "docs" / "platform" / "setup.md").read_text(encoding="utf-8")
    heading = "## S3, MLflow and GitLab for the security guarantees"
    security = text.split(heading, 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```json\n(.*?)```", security, flags=re.S)
    return json.loads(block)["identities"]


def test_the_readme_s3_policy_is_the_one_the_tests_configure() -> None:
    written = {item["name"]: item["actions"] for item in readme_identities()}
    configured = [
        identities.mlflow_server(BUCKET),
        identities.stands(BUCKET),
        identities.branches(BUCKET, "<slug>"),
    ]
    assert written == {identity.name: list(identity.actions) for identity in configured}
