"""A run's status: the five words its log, the database and every screen use.

A ``StrEnum``, so ``RunStatus.DONE == "done"``: the JSON logs and the database keep
their strings, and code compares members, not literals. The terminal and live sets
are defined here and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    QUEUED = "queued"  # in xling's queue or a scheduler's, no worker yet
    RUNNING = "running"  # a worker started and has not reported an end
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # stopped on request; `xling resume` continues it

    @property
    def terminal(self) -> bool:
        """The run ended (its worker will not report again unless it is resumed)."""
        return self in TERMINAL

    @property
    def live(self) -> bool:
        """The run may still train: queued, or a worker is (or should be) at it."""
        return self in LIVE

    @classmethod
    def parse(cls, value: Any) -> RunStatus | None:
        """The status a log line names, or None for anything else: a value read from a
        file never becomes a status it does not name."""
        try:
            return cls(value) if isinstance(value, str) else None
        except ValueError:
            return None


TERMINAL = frozenset({RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED})
LIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
