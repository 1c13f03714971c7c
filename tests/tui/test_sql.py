"""The SQL screen: answers in a table, errors shown, writes refused, long queries cancelled."""

from __future__ import annotations

import threading
import time

import pytest

from db.store import QueryError, Store
from db.user_sql import QueryCancelled, UserQuery
from tests.tui.fixture_db import until

asyncio = pytest.mark.asyncio
LONG = "SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3"


def test_interruptible_query_caps_rows_and_refuses_writes_and_files(fixture_db):
    store = Store(fixture_db)
    result = UserQuery(store, "SELECT * FROM range(50)").run(10)
    assert len(result.rows) == 10 and result.truncated
    with pytest.raises(QueryError, match="read-only"):
        UserQuery(store, "DELETE FROM runs").run(10)
    with pytest.raises(QueryError):
        UserQuery(store, f"COPY runs TO '{fixture_db.parent / 'out.csv'}'").run(10)
    assert not (fixture_db.parent / "out.csv").exists()
    assert store.query("SELECT count(*) FROM runs").rows[0][0] == 8


def test_cancel_from_another_thread_interrupts_duckdb(fixture_db):
    query = UserQuery(Store(fixture_db), LONG)
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(query.run(10))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    query.cancel()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], QueryCancelled)


async def _open_sql(pilot):
    await pilot.press("colon")
    await pilot.pause()
    assert type(pilot.app.screen).__name__ == "SqlScreen"
    return pilot.app.screen


async def _replace_query(pilot, screen, sql: str) -> None:
    screen.query_one("#sql-editor").text = sql
    await pilot.press("ctrl+r")


def _status(screen) -> str:
    return str(screen.query_one("#sql-status").render())


@asyncio
async def test_query_answer_lands_in_the_table(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_sql(pilot)
        await _replace_query(pilot, screen, "SELECT name, status FROM runs ORDER BY name")
        await until(pilot, lambda: not screen.running and "row" in _status(screen))
        table = screen.query_one("#sql-result")
        assert table.row_count == 8 and len(table.columns) == 2
        assert "8 row(s)" in _status(screen)


@asyncio
async def test_sql_error_is_shown_not_raised(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_sql(pilot)
        await _replace_query(pilot, screen, "SELECT no_such_column FROM runs")
        await until(pilot, lambda: not screen.running and "no_such_column" in _status(screen))
        assert "no_such_column" in _status(screen)
        await _replace_query(pilot, screen, "DROP TABLE runs")
        await until(pilot, lambda: not screen.running and "read-only" in _status(screen))
        assert "read-only" in _status(screen)
        assert app.is_running


@asyncio
async def test_values_and_names_that_look_like_markup_are_shown_as_they_are(make_app):
    """A result is data: '[/bold]' in a cell or a column name is text to show, never a
    style to apply (nor a markup error that would end the app)."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_sql(pilot)
        await _replace_query(pilot, screen, """SELECT '[/bold]' AS "[red]x", '[bold]b[/bold]' AS y""")
        await until(pilot, lambda: not screen.running and "row" in _status(screen))
        await pilot.pause(0.1)
        table = screen.query_one("#sql-result")
        assert [str(c.label) for c in table.columns.values()] == ["[red]x", "y"]
        assert [str(c) for c in table.get_row_at(0)] == ["[/bold]", "[bold]b[/bold]"]
        shown = "".join(seg.text for y in range(3) for seg in table.render_line(y))
        assert "[/bold]" in shown and "[bold]b[/bold]" in shown and "[red]x" in shown
        assert app.is_running


@asyncio
async def test_escape_cancels_a_long_query_then_leaves(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_sql(pilot)
        await _replace_query(pilot, screen, LONG)
        await until(pilot, lambda: screen.running)
        await pilot.pause(0.3)
        await pilot.press("escape")
        await until(pilot, lambda: not screen.running)
        assert "cancelled" in _status(screen)
        assert type(app.screen).__name__ == "SqlScreen"  # the first esc only cancelled
        await pilot.press("escape")
        assert type(app.screen).__name__ == "DashboardScreen"
