"""The readers of a model's `online:` and `review:`: the model served, for good and for review.

`online` says how the model is served behind an endpoint; `review` names the sample both the
new and the production model predict on in a merge request's review. A mixin of the loader in
`mlops.py`, apart so that the rules of one group of sections, and their messages, read as one
piece.
"""

from __future__ import annotations

from ruamel.yaml.comments import CommentedMap

from .checks import as_bool, as_max_replicas, as_min_replicas
from .fields import section
from .shared_fields import SharedFields
from .types import DEFAULT_RESOURCES, Online, Review
from .walker import join_path

_ONLINE = section("models.online")
_REVIEW = section("models.review")


class OnlineSections(SharedFields):
    """`online` and `review` of one model."""

    def online(self, model: CommentedMap, path: str) -> Online:
        path = join_path(path, "online")
        online = self.mapping(model, "online", path, _ONLINE.keys())
        low = self.value(online, "min_replicas", path, as_min_replicas, 1)
        high = self.value(online, "max_replicas", path, as_max_replicas, None)
        if online is None or "max_replicas" not in online:
            high = max(1, low or 0)  # an omitted max follows min
        elif low is not None and high is not None and high < low:
            self.report(
                online,
                "max_replicas",
                join_path(path, "max_replicas"),
                f"found {high}, below min_replicas {low}; expected max_replicas >= min_replicas. "
                "Raise max_replicas or lower min_replicas.",
            )
        return Online(
            enabled=self.value(online, "enabled", path, as_bool, False),
            min_replicas=low,
            max_replicas=high,
            resources=self.resources(online, path, DEFAULT_RESOURCES),
        )

    def review(self, model: CommentedMap, path: str) -> Review:
        path = join_path(path, "review")
        review = self.mapping(model, "review", path, _REVIEW.keys())
        return Review(sample=self.value(review, "sample", path, self.entrypoint, None))
