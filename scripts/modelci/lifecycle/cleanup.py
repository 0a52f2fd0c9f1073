"""What the scheduled clean-up removes: the feature environments of one project whose branch
is gone, and the model environment archives nothing refers to. Pure: decides from names (and
an archive's age) alone.

A feature environment's name is `feature_environment(branch)` (always starting with `b-`); a
stand's never does, and every project has its own directories, so the plan can only name
feature environments of this project, and only those no live branch maps to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config.naming import FEATURE_PREFIX, feature_environment
from ..errors import ModelciError


@dataclass(frozen=True)
class CleanupPlan:
    live: frozenset[str]  # environment names of the branches that exist
    stale: tuple[str, ...]  # environments found whose branch is gone, sorted


def plan_cleanup(
    found: Iterable[str], branches: Iterable[str], default_branch: str, where: str
) -> CleanupPlan:
    """The stale feature environments among `found` (directory names in the shared repos
    and S3), given the project's branches. A branch list without the default branch is not
    believed (an empty or partial answer would make every environment look stale)."""
    branches = list(branches)
    if default_branch not in branches:
        raise ModelciError(
            f"the branch list of {where} ({len(branches)} branches) does not contain the "
            f"default branch {default_branch!r}: it is empty or incomplete, so nothing is "
            "removed. Check the token's access to the repository and run the clean-up again"
        )
    live = frozenset(feature_environment(branch) for branch in branches)
    stale = sorted({name for name in found if name.startswith(FEATURE_PREFIX)} - live)
    return CleanupPlan(live=live, stale=tuple(stale))


def stale_archives(
    archives: Mapping[str, datetime],
    referenced: Iterable[str],
    now: datetime,
    retention: timedelta,
) -> list[str]:
    """The environment archives (key -> when it was uploaded) that no deployed environment
    refers to and that are older than `retention`, sorted. The retention keeps what a recent
    run trained in, and a pipeline between its train and its deploy jobs. A stand never
    appears here: it runs a copy under its own prefix."""
    keep = set(referenced)
    return sorted(key for key, at in archives.items() if key not in keep and now - at > retention)
