"""Messages the app's thread workers post to the UI (dataclasses, as Textual allows).

Workers never touch widgets: they fetch in their thread and post one of these; the
handler on the UI thread only renders. Each carries everything the handler needs, so
a message that arrives late is still consistent in itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from xling_tui.data_source import DashboardData, GpuSample, SqlOutcome
from xling_tui.query_library import QueryLibrary
from xling_tui.sql_completion import Catalog


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
class SqlReady(Message):
    """The SQL screen's catalog (for completion and the schema browser) and its library
    of saved and past queries, read off the UI thread."""

    catalog: Catalog
    library: QueryLibrary
    error: str | None = None


@dataclass
class SqlExported(Message):
    """An export of the SQL screen's result ended: rows written to ``path``, or why not."""

    path: Path
    rows: int = 0
    error: str | None = None


@dataclass
class ActionFinished(Message):
    """A run action (launch, cancel, resume, delete, tag) is done; ``lines`` say what happened."""

    lines: list[str]
    refresh: bool = True  # the dashboard should fetch again to show the effect
