"""How a run's status looks, in the CLI and the TUI alike: one colour per status.

The 16 ANSI colours (bold for what needs attention), so a status reads the same in
any terminal, over SSH, in ``xling status`` and on the dashboard. Rich style strings:
both front ends render with Rich, and neither needs textual for this.
"""

from __future__ import annotations

from engine.runs.status import RunStatus

STATUS_STYLE: dict[str, str] = {  # keyed by RunStatus, which is a str: a database row's string finds it too
    RunStatus.RUNNING: "bold cyan",
    RunStatus.QUEUED: "blue",
    RunStatus.DONE: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.CANCELLED: "yellow",
}

# Sorting by status puts what is moving first, then what waits, then what needs a look.
ATTENTION_ORDER: dict[str, int] = {
    s: i
    for i, s in enumerate((RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.DONE))
}


def status_style(status: str | None) -> str:
    """The style of a status read from anywhere (a database row's string included); '' if unknown."""
    return STATUS_STYLE.get(status or "", "")


def attention_rank(status: str | None) -> int:
    return ATTENTION_ORDER.get(status or "", len(ATTENTION_ORDER))
