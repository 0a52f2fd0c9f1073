"""The rules of moving a registered model version through the stands of `mlops.yaml`.

Pure: which stand comes before which, and the audit trail MLflow does not keep for aliases.
Each time a stand's alias is pointed at a version, that version gets tags
`modelci.stand.<stand>.<field>` saying who did it, when, how (promote, rollback, deploy),
from which merge request, pipeline and commit, and which version the stand served before;
a rollback reads that last field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..config.types import Stand
from ..errors import ModelciError

AUDIT_PREFIX = "modelci.stand"
ACTIONS = ("promote", "rollback", "deploy")
# What the version of a stand is tagged with when a person deployed it despite its gate.
GATE_OVERRIDE_FIELD = "gate_override"


@dataclass(frozen=True)
class Audit:
    """One move of a stand's alias."""

    stand: str
    action: str  # one of ACTIONS
    user: str  # GitLab user who ran the pipeline
    at: str  # UTC, ISO 8601
    pipeline: str  # pipeline URL (or id)
    commit: str
    previous_version: str  # "" when the stand served nothing before
    merge_request: str = ""  # the merged merge request's URL, for a promotion after a merge
    reason: str = ""  # why a version that did not pass the gate was deployed

    def tags(self) -> dict[str, str]:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        fields = {
            "action": self.action,
            "by": self.user,
            "at": self.at,
            "pipeline": self.pipeline,
            "commit": self.commit,
            "previous_version": self.previous_version,
            "merge_request": self.merge_request,
            GATE_OVERRIDE_FIELD: self.reason,
        }
        return {audit_tag(self.stand, key): value for key, value in fields.items() if value}


def audit_tag(stand: str, field: str) -> str:
    return f"{AUDIT_PREFIX}.{stand}.{field}"


def previous_version(tags: Mapping[str, str], stand: str) -> str | None:
    """The version `stand` served before the one carrying `tags`, from its audit trail."""
    return tags.get(audit_tag(stand, "previous_version")) or None


def stand_index(stands: Sequence[Stand], stand: str, config_path: str) -> int:
    names = [item.name for item in stands]
    if stand not in names:
        raise ModelciError(
            f"stand {stand!r} is not in {config_path}; its stands are: {', '.join(names)}. "
            "Name one of them, or add it under `stands:`"
        )
    return names.index(stand)


def stand_before(stands: Sequence[Stand], stand: str, config_path: str) -> str:
    """The stand whose version `stand` takes over; promotion never skips a stand."""
    index = stand_index(stands, stand, config_path)
    if index == 0:
        raise ModelciError(
            f"{stand!r} is the first stand of {config_path}: it is promoted after a merge to "
            "the default branch (the promote job of that pipeline), not from another stand"
        )
    return stands[index - 1].name
