"""The clean-up plan: only feature environments whose branch is gone, never a stand."""

from __future__ import annotations

import pytest

from modelci.config.naming import feature_environment
from modelci.errors import ModelciError
from modelci.lifecycle.cleanup import plan_cleanup

BRANCHES = ["main", "feature/a", "feature/A", "feature/a-", "fix/ünïcode"]


def test_only_environments_of_deleted_branches_are_stale() -> None:
    live = [feature_environment(b) for b in BRANCHES]
    gone = [feature_environment(b) for b in ("feature/b", "feature/a--", "old")]
    found = [*live, *gone, "production", "staging", "qa-1"]

    plan = plan_cleanup(found, BRANCHES, "main", "ml/churn")

    assert plan.stale == tuple(sorted(gone))
    assert not {"production", "staging", "qa-1"} & set(plan.stale)  # stands are never stale


def test_case_and_trailing_character_twins_are_distinct_branches() -> None:
    found = [feature_environment(b) for b in ("feature/a", "feature/A", "feature/a-")]

    plan = plan_cleanup(found, ["main", "feature/A"], "main", "ml/churn")

    assert plan.stale == tuple(sorted(set(found) - {feature_environment("feature/A")}))


@pytest.mark.parametrize("branches", [[], ["feature/a"], ["Main"]])
def test_a_branch_list_without_the_default_branch_is_not_believed(branches: list[str]) -> None:
    with pytest.raises(ModelciError, match="does not contain the default branch 'main'"):
        plan_cleanup([feature_environment("feature/a")], branches, "main", "ml/churn")


def test_an_archive_goes_when_nothing_refers_to_it_and_it_is_old_enough() -> None:
    from datetime import UTC, datetime, timedelta

    from modelci.lifecycle.cleanup import stale_archives

    now = datetime(2026, 12, 3, tzinfo=UTC)
    archives = {
        "used-old": now - timedelta(days=90),
        "unused-old": now - timedelta(days=15),
        "unused-new": now - timedelta(days=13),
    }
    assert stale_archives(archives, {"used-old"}, now, timedelta(days=14)) == ["unused-old"]
    assert stale_archives(archives, {"used-old"}, now, timedelta(0)) == [
        "unused-new",
        "unused-old",
    ]
    assert stale_archives({}, {"x"}, now, timedelta(0)) == []
