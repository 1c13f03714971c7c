"""Snapshots of the dashboard at 80x24 and 120x40: fixture database, fake GPUs, fixed clock.

Regenerate after an intended change with ``pytest tests/tui --snapshot-update`` and look
at the SVGs under ``__snapshots__/`` before committing them.
"""

from __future__ import annotations

import pytest

SIZES = [(80, 24), (120, 40)]


async def wait_loaded(pilot) -> None:
    """Both thread workers have delivered: the runs and one GPU sample."""
    app = pilot.app
    for _ in range(400):
        board = app.screen
        if getattr(board, "data", None) is not None and board.query_one("#gpus").sample is not None:
            break
        await pilot.pause(0.05)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=wait_loaded)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard_cpu_mode(snap_compare, make_app, no_gpus, size):
    assert snap_compare(make_app(gpu_source=no_gpus), terminal_size=size, run_before=wait_loaded)


def test_dashboard_filtered_marked_one_experiment(snap_compare, make_app):
    async def run_before(pilot):
        await wait_loaded(pilot)
        await pilot.press("right_square_bracket", "slash", *"EN2", "enter", "space", "space")
        assert len(pilot.app.screen.marked) == 2  # the mixes with an EN2, of table1

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_delete_confirmation(snap_compare, make_app, size):
    async def run_before(pilot):
        await wait_loaded(pilot)
        await pilot.press("down", "space", "down", "space", "D")

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)
