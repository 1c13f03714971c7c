"""Messages the app's thread workers post to the UI (dataclasses, as Textual allows).

Workers never touch widgets: they fetch in their thread and post one of these; the
handler on the UI thread only renders. Each carries everything the handler needs, so
a message that arrives late is still consistent in itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from xling_tui.data_source import DashboardData, GpuSample, SqlOutcome


@dataclass
class DashboardFetched(Message):
    """A dashboard fetch ended: new data, or None when nothing changed (the poller then
    knows it may start the next fetch); ``seq`` orders fetches so an older one never
    replaces a newer one."""

    data: DashboardData | None
    seq: int


@dataclass
class GpusSampled(Message):
    """One sampler tick: the device snapshot with the histories the sparklines draw."""

    sample: GpuSample


@dataclass
class SqlFinished(Message):
    """A query of the SQL screen ended: rows, an error, or a cancellation."""

    outcome: SqlOutcome


@dataclass
class ActionFinished(Message):
    """A run action (launch, cancel, resume, delete, tag) is done; ``lines`` say what happened."""

    lines: list[str]
    refresh: bool = True  # the dashboard should fetch again to show the effect
