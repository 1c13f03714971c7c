"""Snapshots of the SQL screen: an answer, and an error, at 80x24 and 120x40."""

from __future__ import annotations

import pytest

from tests.tui.test_dashboard_snapshots import SIZES, wait_loaded


def _run(sql: str):
    async def run_before(pilot):
        await wait_loaded(pilot)
        await pilot.press("colon")
        await pilot.pause()
        screen = pilot.app.screen
        screen.query_one("#sql-editor").text = sql
        await pilot.press("ctrl+r")
        for _ in range(400):
            if not screen.running:
                break
            await pilot.pause(0.05)
        await pilot.pause()

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
