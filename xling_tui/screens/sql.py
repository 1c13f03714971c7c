"""``:``: a read-only SQL box over the results, its answer in a table.

The query runs on a thread worker through ``db.user_sql.UserQuery`` (a
read-only connection with no access to other files); ``esc`` while it runs calls
DuckDB's ``interrupt()`` from the UI thread. At most ``ROW_CAP`` rows are fetched;
errors (DuckDB's message, a busy database) are shown under the box, never raised.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TextArea

from xling_tui.context import xling_app
from xling_tui.data_source import SqlOutcome
from xling_tui.messages import SqlFinished

if TYPE_CHECKING:
    from db.user_sql import UserQuery

ROW_CAP = 1000
CELL_WIDTH = 48
EXAMPLE = (
    "SELECT r.experiment, r.name, e.language, min(e.ppl) AS best_ppl\n"
    "FROM evals e JOIN runs r USING (run_id)\nGROUP BY ALL ORDER BY ALL"
)


def cell(value: Any) -> Text | str:
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    text = str(value)
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


class SqlScreen(Screen[None]):
    CSS_PATH = "sql.tcss"
    BINDINGS = [
        Binding("ctrl+r,f5", "run_query", "run"),
        Binding("escape", "cancel_or_back", "cancel / back"),
        Binding("ctrl+t", "toggle_focus", "query ↔ table"),
    ]

    running: reactive[bool] = reactive(False)

    def __init__(self, sql: str = EXAMPLE) -> None:
        super().__init__()
        self.initial_sql = sql
        self._query: UserQuery | None = None
        self._seq = 0

    def compose(self) -> ComposeResult:
        yield Static("SQL over the results (read-only) · ctrl+r runs · esc cancels a running query", id="sql-title")
        editor = TextArea(self.initial_sql, id="sql-editor", soft_wrap=True, show_line_numbers=False)
        editor.cursor_blink = False
        yield editor
        yield Static("", id="sql-status")
        yield DataTable(id="sql-result", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sql-editor", TextArea).focus()
        self._status(
            "tables: runs, train_metrics, evals, teff, scaling_fits, align_embeddings, align_hidden, "
            "align_gradients, experiments",
            style="dim",
        )

    def _status(self, text: str, style: str = "") -> None:
        self.query_one("#sql-status", Static).update(Text(text, style=style))

    def action_run_query(self) -> None:
        sql = self.query_one("#sql-editor", TextArea).text.strip()
        if not sql:
            self._status("type a query first", style="yellow")
            return
        if self.running:
            self._status("a query is still running: esc cancels it", style="yellow")
            return
        from db.store import Store
        from db.user_sql import UserQuery

        self._seq += 1
        self._query = UserQuery(Store(xling_app(self).db_path), sql)
        self.running = True
        self._status("running… (esc cancels)", style="bold")
        self.execute(self._query, self._seq)

    @work(thread=True, exclusive=True, group="sql", exit_on_error=False)
    def execute(self, query, seq: int) -> None:
        from db.store import StoreError
        from db.user_sql import QueryCancelled

        clock = xling_app(self).clock  # the app's clock, so a test's fixed clock makes the time shown fixed too
        start = clock()
        try:
            result = query.run(ROW_CAP)
            outcome = SqlOutcome(query.sql, tuple(result.columns), tuple(result.rows), result.truncated)
        except QueryCancelled:
            outcome = SqlOutcome(query.sql, cancelled=True)
        except StoreError as exc:
            outcome = SqlOutcome(query.sql, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - shown under the box like any other failure
            xling_app(self).report_error(exc, "running the query")
            outcome = SqlOutcome(query.sql, error=f"{type(exc).__name__}: {exc}")
        self.post_message(SqlFinished(_with_time(outcome, clock() - start)))

    def on_sql_finished(self, message: SqlFinished) -> None:
        self.running = False
        self._query = None
        out = message.outcome
        if out.cancelled:
            self._status(f"cancelled after {out.seconds:.1f} s", style="yellow")
            return
        if out.error is not None:
            self._status(out.error, style="bold red")
            return
        table = self.query_one("#sql-result", DataTable)
        table.clear(columns=True)
        rows = [tuple(cell(v) for v in row) for row in out.rows]
        # Widths from the cells now, not measured by DataTable when idle (a frame painted
        # before that would keep header-wide columns in its cache).
        for i, name in enumerate(out.columns):
            width = max(
                [cell_len(name), *(c.cell_len if isinstance(c, Text) else cell_len(c) for c in (r[i] for r in rows))]
            )
            table.add_column(name, width=width)
        table.add_rows(rows)
        capped = f" (the first {ROW_CAP}; add a LIMIT or aggregate)" if out.truncated else ""
        self._status(f"{len(out.rows)} row(s){capped} in {out.seconds:.2f} s", style="green")

    def action_cancel_or_back(self) -> None:
        if self.running and self._query is not None:
            self._query.cancel()
            self._status("cancelling…", style="yellow")
        else:
            self.app.pop_screen()

    def action_toggle_focus(self) -> None:
        editor = self.query_one("#sql-editor", TextArea)
        (self.query_one("#sql-result", DataTable) if editor.has_focus else editor).focus()


def _with_time(outcome: SqlOutcome, seconds: float) -> SqlOutcome:
    from dataclasses import replace

    return replace(outcome, seconds=seconds)
