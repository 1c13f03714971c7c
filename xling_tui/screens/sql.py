"""``:``: a read-only SQL box over the results that people keep open.

The query runs on a thread worker through ``db.user_sql.UserQuery`` (a
read-only connection with no access to other files); ``esc`` while it runs calls
DuckDB's ``interrupt()`` from the UI thread. The table shows the first ``ROW_CAP``
rows and the status line how many the whole result has. Errors (DuckDB's message, a
busy database) are shown under the box, never raised.

Around the box: the history of queries run (``↑``/``↓`` at the box's edges, ``f8`` for
a searchable list with the saved ones) and named saved queries (``ctrl+s``), kept across
sessions beside the database (``xling_tui.query_library``); completion of table and
column names and common functions (``tab``; ``xling_tui.sql_completion``); the schema
browser (``ctrl+b``); export of the whole result to CSV, Parquet or JSON (``ctrl+e``,
``db.export``: xling writes the file from the rows the read-only query returns).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from xling_tui.context import xling_app
from xling_tui.data_source import SqlOutcome
from xling_tui.messages import SqlExported, SqlFinished, SqlReady
from xling_tui.query_library import HistoryCursor, QueryLibrary
from xling_tui.screens.base import XlingScreen
from xling_tui.sql_completion import Catalog
from xling_tui.sql_value import value_text
from xling_tui.widgets.cell import Cell
from xling_tui.widgets.cell_table import CellTable
from xling_tui.widgets.key_footer import KeyFooter
from xling_tui.widgets.schema_tree import SchemaTree
from xling_tui.widgets.sql_editor import SqlEditor

if TYPE_CHECKING:
    from db.user_sql import UserQuery

ROW_CAP = 1000
CELL_WIDTH = 48
WIDE = 120  # from this many columns the schema browser is shown from the start
TITLE = "read-only SQL · ctrl+r runs · esc cancels · tab completes · ↑↓ history · f8 list"
EXAMPLE = (
    "SELECT r.experiment, r.name, e.language, min(e.ppl) AS best_ppl\n"
    "FROM evals e JOIN runs r USING (run_id)\nGROUP BY ALL ORDER BY ALL"
)


def result_cell(value: Any, width: int = CELL_WIDTH) -> Cell:
    """A value as the table shows it (``sql_value.value_text``), long text cut at ``width``."""
    text = value_text(value)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return Cell(text)


class SqlScreen(XlingScreen[None]):
    CSS_PATH = "sql.tcss"
    BINDINGS = [
        Binding("ctrl+r,f5", "run_query", "run", tooltip="run the query"),
        Binding("escape", "cancel_or_back", "cancel / back", tooltip="cancel a running query, else go back"),
        Binding("ctrl+t", "toggle_focus", "query ↔ table", tooltip="move between the query and the result"),
        Binding("f8,ctrl+o", "pick_query", "history", tooltip="saved and past queries, searchable"),
        Binding("ctrl+s", "save_query", "save", tooltip="save the query under a name"),
        Binding("ctrl+e", "export", "export", priority=True, tooltip="write the whole result to CSV/Parquet/JSON"),
        Binding("ctrl+b", "toggle_schema", "schema", tooltip="show / hide the tables, columns and views"),
    ]

    running: reactive[bool] = reactive(False)

    def __init__(self, sql: str = EXAMPLE) -> None:
        super().__init__()
        self.initial_sql = sql
        self._query: UserQuery | None = None
        self._seq = 0
        self.library: QueryLibrary | None = None
        self.history = HistoryCursor([])
        self.shown: SqlOutcome | None = None  # the result in the table (what ctrl+e exports)

    def compose(self) -> ComposeResult:
        with Horizontal(id="sql-body"):
            yield SchemaTree(id="sql-schema")
            with Vertical(id="sql-main"):
                yield Static(TITLE, id="sql-title")
                yield SqlEditor(self.initial_sql, id="sql-editor")
                yield Static("", id="sql-status")
                yield CellTable(id="sql-result", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#sql-schema").display = self.app.size.width >= WIDE
        self.query_one("#sql-editor", SqlEditor).focus()
        self._status("reading the schema…", style="dim")
        self._load()

    def _status(self, text: str | Text, style: str = "") -> None:
        self.query_one("#sql-status", Static).update(Text(text, style=style) if isinstance(text, str) else text)

    # -- catalog and library ------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sql-load", exit_on_error=False)
    def _load(self) -> None:
        """The schema (for completion and the browser) and the saved queries, off the UI thread."""
        from db.queries import schema_catalog
        from db.store import Store, StoreError
        from xling_tui.query_library import library_path
        from xling_tui.sql_completion import Relation

        library = QueryLibrary.load(library_path(xling_app(self).db_path))
        store = Store(xling_app(self).db_path)
        catalog, error = Catalog(), None
        try:
            if store.db_path.exists():
                catalog = Catalog(tuple(Relation(n, k, c, tuple(cols)) for n, k, c, cols in schema_catalog(store)))
        except StoreError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - the box works without completion
            xling_app(self).report_error(exc, "reading the schema")
            error = f"{type(exc).__name__}: {exc}"
        self.post_message(SqlReady(catalog, library, error))

    def on_sql_ready(self, message: SqlReady) -> None:
        self.library = message.library
        self.history.reset(self.library.history)
        self.query_one("#sql-editor", SqlEditor).catalog = message.catalog
        self.query_one("#sql-schema", SchemaTree).show(message.catalog)
        if message.library.warning:
            self.notify(message.library.warning, severity="warning", timeout=10)
        if message.error:
            self._status(f"no schema for completion: {message.error}", style="yellow")
        elif not self.running and self.shown is None:
            tables = [r.name for r in message.catalog.relations if r.kind == "table"]
            if self.query_one("#sql-schema").display:
                self._status(f"{len(tables)} tables · enter in the browser inserts a name", style="dim")
            else:
                self._status(f"tables: {', '.join(tables) or 'none yet'} · ctrl+b browses them", style="dim")

    @work(thread=True, group="sql-library", exit_on_error=False)
    def persist_library(self) -> None:
        """Writes the saved and past queries beside the database (merged with other apps')."""
        if self.library is None:
            return
        try:
            self.library.persist()
        except OSError as exc:
            xling_app(self).report_error(exc, "saving the query history")

    # -- running ------------------------------------------------------------------------

    def action_run_query(self) -> None:
        sql = self.query_one("#sql-editor", SqlEditor).text.strip()
        if not sql:
            self._status("type a query first", style="yellow")
            return
        if self.running:
            self._status("a query is still running: esc cancels it", style="yellow")
            return
        from db.store import Store
        from db.user_sql import UserQuery

        if self.library is not None:
            self.library.add(sql)
            self.history.reset(self.library.history)
            self.persist_library()
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
            result = query.run(ROW_CAP, count_rest=True)  # the rows left out are counted, never held
            total = len(result.rows) + (result.left_out or 0)
            outcome = SqlOutcome(query.sql, tuple(result.columns), tuple(result.rows), result.truncated, total)
        except QueryCancelled:
            outcome = SqlOutcome(query.sql, cancelled=True)
        except StoreError as exc:
            outcome = SqlOutcome(query.sql, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - shown under the box like any other failure
            xling_app(self).report_error(exc, "running the query")
            outcome = SqlOutcome(query.sql, error=f"{type(exc).__name__}: {exc}")
        self.post_message(SqlFinished(replace(outcome, seconds=clock() - start)))

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
        self.shown = out
        table = self.query_one("#sql-result", DataTable)
        table.clear(columns=True)
        width = max(CELL_WIDTH, table.size.width // 3)  # a wide terminal shows more of a long value
        rows = [tuple(result_cell(v, width) for v in row) for row in out.rows]
        # Widths from the cells now, not measured by DataTable when idle (a frame painted
        # before that would keep header-wide columns in its cache).
        for i, name in enumerate(out.columns):
            width = max([cell_len(name), *(r[i].width for r in rows)])
            table.add_column(Text(name), width=width)
        table.add_rows(rows)
        self._status(result_line(out), style="green")

    def action_cancel_or_back(self) -> None:
        if self.running and self._query is not None:
            self._query.cancel()
            self._status("cancelling…", style="yellow")
        else:
            self.app.pop_screen()

    # -- history, saved queries, completion, schema -------------------------------------

    def on_sql_editor_history_step(self, message: SqlEditor.HistoryStep) -> None:
        editor = self.query_one("#sql-editor", SqlEditor)
        text = self.history.step(message.direction, editor.text)
        if text is not None:
            editor.replace_text(text)

    def on_sql_editor_candidates(self, message: SqlEditor.Candidates) -> None:
        names = message.completion.candidates
        if not names:
            self.query_one("#sql-title", Static).update(TITLE)
            return
        more = f" · ctrl+n: {' · '.join(names[1:6])}" if len(names) > 1 else ""
        self.query_one("#sql-title", Static).update(
            Text.assemble(
                ("tab ", "bold"), names[0], (more, "dim"), (f" (+{len(names) - 6})" if len(names) > 6 else "")
            )
        )

    def action_pick_query(self) -> None:
        if self.library is None:
            return
        from xling_tui.screens.query_picker import QueryPickerScreen

        def chosen(sql: str | None) -> None:
            if sql is not None:
                self.query_one("#sql-editor", SqlEditor).replace_text(sql)
                self.query_one("#sql-editor", SqlEditor).focus()

        self.app.push_screen(QueryPickerScreen(self.library, self.persist_library), chosen)

    def action_save_query(self) -> None:
        if self.library is None:
            return
        from xling_tui.query_library import LibraryError
        from xling_tui.screens.dialogs import TextPromptScreen

        sql = self.query_one("#sql-editor", SqlEditor).text

        def named(name: str | None) -> None:
            if name is None or self.library is None:
                return
            try:
                kept = self.library.save(name, sql)
            except LibraryError as exc:
                self.notify(str(exc), severity="error")
                return
            self.persist_library()
            self.notify(f"saved as “{kept}” (f8 lists saved queries)")

        self.app.push_screen(
            TextPromptScreen("Save the query", "a name; the same name replaces that saved query (enter saves)"), named
        )

    def action_toggle_schema(self) -> None:
        tree = self.query_one("#sql-schema", SchemaTree)
        tree.display = not tree.display
        (tree if tree.display else self.query_one("#sql-editor", SqlEditor)).focus()

    def on_schema_tree_picked(self, message: SchemaTree.Picked) -> None:
        editor = self.query_one("#sql-editor", SqlEditor)
        editor.insert(message.text)
        editor.focus()

    def action_toggle_focus(self) -> None:
        editor = self.query_one("#sql-editor", SqlEditor)
        (self.query_one("#sql-result", DataTable) if editor.has_focus else editor).focus()

    # -- export -------------------------------------------------------------------------

    def action_export(self) -> None:
        if self.shown is None:
            self._status("run a query first: ctrl+e writes its whole result to a file", style="yellow")
            return
        from xling_tui.screens.export_dialog import ExportScreen

        shown = self.shown

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._status(f"writing {path.name}…", style="bold")
                self._export(shown.sql, path)

        self.app.push_screen(ExportScreen(Path("query.csv"), shown.total_rows), chosen)

    @work(thread=True, group="sql-export", exit_on_error=False)
    def _export(self, sql: str, path: Path) -> None:
        from db.export import export_query
        from db.store import Store, StoreError
        from db.user_sql import UserQuery

        try:
            rows = export_query(UserQuery(Store(xling_app(self).db_path), sql), path)
            self.post_message(SqlExported(path, rows))
        except (StoreError, OSError) as exc:
            self.post_message(SqlExported(path, error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - said under the box; the bug goes to the error log
            xling_app(self).report_error(exc, "exporting the result")
            self.post_message(SqlExported(path, error=f"{type(exc).__name__}: {exc}"))

    def on_sql_exported(self, message: SqlExported) -> None:
        if message.error:
            self._status(f"export to {message.path} failed: {message.error}", style="bold red")
        else:
            self._status(f"wrote {message.rows:,} rows to {message.path}", style="green")


def result_line(out: SqlOutcome) -> str:
    """'12 rows in 0.03 s', or 'the first 1,000 of 52,310 rows ...' when the table is capped."""
    if out.truncated:
        return (
            f"the first {len(out.rows):,} of {out.total_rows:,} rows in {out.seconds:.2f} s "
            "· ctrl+e exports them all · add a LIMIT or aggregate"
        )
    return f"{len(out.rows):,} row(s) in {out.seconds:.2f} s"
