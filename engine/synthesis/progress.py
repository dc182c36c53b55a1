"""Progress of a coarse-to-fine synthesis: match-and-vote rounds done out of those planned.

Every synthesis (hole completion, guided style synthesis, texture growth) reports through the
same `(done, total)` callback, so the job's progress bar moves once per EM round.
"""
from __future__ import annotations

from typing import Callable

Progress = Callable[[int, int], None] | None


class Ticker:
    """Counts rounds and forwards each one to `progress` (which may be None)."""

    def __init__(self, total: int, progress: Progress):
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)
