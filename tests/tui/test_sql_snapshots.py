"""Snapshots of the SQL screen: an answer and an error (80x24, 120x40); the schema
browser, the capped answer with its full count, the history list, the export prompt and
a completion (80x24 and 200x60, where the browser is open from the start)."""

from __future__ import annotations

import pytest

from tests.tui.test_dashboard_snapshots import SIZES
from tests.tui.test_sql_library import open_sql_screen, run_sql

NEW_SIZES = [(80, 24), (200, 60)]


def _run(sql: str):
    async def run_before(pilot):
        screen = await open_sql_screen(pilot)
        await run_sql(pilot, screen, sql)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sql_answer(snap_compare, make_app, size):
    sql = (
        "SELECT r.name, e.language, round(min(e.ppl), 1) AS best_ppl\n"
        "FROM evals e JOIN runs r USING (run_id)\nGROUP BY ALL ORDER BY ALL"
    )
    assert snap_compare(make_app(), terminal_size=size, run_before=_run(sql))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sql_error(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=_run("SELECT nope FROM runs"))


@pytest.mark.parametrize("size", NEW_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sql_schema_browser_and_capped_count(snap_compare, make_app, size):
    async def run_before(pilot):
        screen = await open_sql_screen(pilot)
        await run_sql(pilot, screen, "SELECT step, loss, lang_loss FROM train_metrics, range(5) ORDER BY ALL")
        tree = screen.query_one("#sql-schema")
        if not tree.display:
            await pilot.press("ctrl+b")
        tree.focus()
        runs = next(n for n in tree.root.children[0].children if n.data == "teff")
        runs.expand()
        tree.move_cursor(runs)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", NEW_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sql_history_list(snap_compare, make_app, size):
    async def run_before(pilot):
        screen = await open_sql_screen(pilot)
        await run_sql(pilot, screen, "SELECT count(*) FROM evals")
        await run_sql(pilot, screen, "SELECT name, status FROM runs ORDER BY name")
        await pilot.press("ctrl+s", *"run states", "enter")
        await pilot.pause()
        await pilot.press("f8")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", NEW_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sql_export_prompt(snap_compare, make_app, size):
    async def run_before(pilot):
        screen = await open_sql_screen(pilot)
        await run_sql(pilot, screen, "SELECT * FROM teff")
        await pilot.press("ctrl+e")
        await pilot.pause()
        pilot.app.screen.query_one("#export-path").value = "no-such-folder/teff.parquet"
        await pilot.press("enter")  # refused: the hint says why
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


def test_sql_completion(snap_compare, make_app):
    async def run_before(pilot):
        screen = await open_sql_screen(pilot)
        screen.query_one("#sql-editor").replace_text("")
        await pilot.press(*"SELECT tokens_")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)
