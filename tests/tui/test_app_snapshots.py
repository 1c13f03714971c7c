"""Snapshots of the help screen and the worker log at 80x24 and 120x40."""

from __future__ import annotations

import pytest

from tests.tui.test_dashboard_snapshots import SIZES, wait_loaded


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, press=["question_mark"])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_launch_dialog(snap_compare, make_app, size):
    async def run_before(pilot):
        await wait_loaded(pilot)
        await pilot.press("right_square_bracket", "L")

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


def test_worker_log_screen(snap_compare, make_app):
    async def run_before(pilot):
        await wait_loaded(pilot)
        await pilot.press("slash", *"4-stage", "enter", "l")
        for _ in range(100):
            screen = pilot.app.screen
            if type(screen).__name__ == "LogScreen" and (screen._tail.offset or screen._said_missing):
                break
            await pilot.pause(0.05)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)
