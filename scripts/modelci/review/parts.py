"""A part of the review: what was computed, how long it took, or why it could not be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Part(Generic[T]):
    title: str
    seconds: float
    value: T | None = None
    reason: str = ""  # why `value` is None: shown in the note and the log

    @property
    def done(self) -> bool:
        return self.value is not None
