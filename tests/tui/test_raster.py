"""Curves drawn by raster.line_cells: the very cells textual-plot's own line drawing sets."""

from __future__ import annotations

import random

import numpy as np
import pytest
from textual.app import App
from textual_hires_canvas import Canvas
from textual_plot import HiResMode, PlotWidget

from xling_tui.widgets.plots import XPlot
from xling_tui.widgets.raster import walk


class One(App):
    def compose(self):
        yield XPlot(id="p")


def cells(plot: XPlot, canvas: Canvas, draw) -> list[list[str]]:
    canvas.reset()
    for dataset in plot._datasets:
        draw(plot, dataset)
    return [[*row] for row in canvas._buffer]


@pytest.mark.asyncio
async def test_every_curve_is_drawn_cell_for_cell_as_textual_plot_draws_it():
    """Random curves: sorted and not, steep, flat, a few points or many, inside the
    canvas and crossing its edges (limits narrower than the data)."""
    app = One()
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        plot = app.query_one(XPlot)
        canvas = plot.query_one("#plot", Canvas)
        rng = random.Random(7)
        for case in range(200):
            n = rng.choice([2, 3, 5, 20, 200])
            x = np.array([rng.uniform(0, 10) for _ in range(n)])
            x = np.sort(x) if case % 5 else x
            y = np.array([rng.uniform(-5, 5) * rng.choice([1, 0.01, 100]) for _ in range(n)])
            plot.clear()
            plot.plot(x, y, line_style="cyan", hires_mode=HiResMode.BRAILLE)
            plot.plot(x[::-1], y, line_style="red", hires_mode=HiResMode.BRAILLE)  # drawn over the first
            if case % 3 == 0:
                plot.set_xlimits(2, 8)
                plot.set_ylimits(-2, 2)
            else:
                plot.set_xlimits(None, None)
                plot.set_ylimits(None, None)
            PlotWidget._render_plot(plot)  # the limits and the scale as textual-plot sets them
            theirs = cells(plot, canvas, PlotWidget._render_line_plot)
            ours = cells(plot, canvas, XPlot._render_line_plot)
            assert ours == theirs, case
            assert any(c for row in ours for c in row)  # something was drawn


def test_segments_step_exactly_as_bresenham():
    rng = random.Random(3)
    for _ in range(300):
        x0, y0, x1, y1 = (rng.randint(-5, 40) for _ in range(4))
        canvas = Canvas(1, 1)
        expected = set(canvas._get_line_coordinates(x0, y0, x1, y1))
        xs, ys = walk(*(np.array([v]) for v in (x0, y0, x1, y1)))
        assert set(zip(xs.tolist(), ys.tolist(), strict=True)) == expected
