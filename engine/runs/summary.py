"""What every view of a run shows: who it is and where it stands (the ``runs`` table's columns).

The dashboard's row (``xling_tui.data_source.RunRow``) and the run screen's header
(``db.run_panels.RunInfo``) each add their own fields to this one set.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.runs.status import RunStatus


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    run_id: str
    experiment: str | None
    name: str | None
    kind: str | None  # "mix" | "baseline"
    status: str
    step: int | None
    total_steps: int | None
    device: str | None
    tokens_per_s: float | None  # the latest training throughput
    message: str | None = None  # why it failed or stopped

    @property
    def label(self) -> str:
        return f"{self.experiment or '?'}/{self.name or self.run_id[:8]}"

    @property
    def progress(self) -> float | None:
        """Fraction of its steps done (1 once done; None without a step count)."""
        if self.status == RunStatus.DONE:
            return 1.0
        if not self.total_steps:
            return None
        return min(max((self.step or 0) / self.total_steps, 0.0), 1.0)
