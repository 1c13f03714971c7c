"""Line and scatter plots for the run panels, on textual-plot's PlotWidget.

Added to the library widget: log axes (the data is plotted as log10 and a formatter
writes ticks back as 100, 1k, 1M), decimation to the plot's width (min and max per
column, so spikes survive), and a redraw throttle: a figure after a quiet spell is drawn
at once (a key press answers without waiting for a tick), one that comes sooner waits
for the next tick and replaces whatever is waiting, so at most ``max_hz`` redraws a
second happen and stale frames are never drawn. A figure shown before the plot has its
size waits for it; lines are drawn whole curves at a time (``raster``).
Colours are the 16 ANSI names, which every terminal has.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from time import monotonic

import numpy as np
from textual_hires_canvas import Canvas
from textual_plot import AxisFormatter, HiResMode, LegendLocation, NumericAxisFormatter, PlotWidget

from xling_tui.widgets.raster import hires_points, line_cells

MANY_LINES = 12  # more curves than this are drawn at one point per column

PALETTE = (
    "cyan",
    "magenta",
    "yellow",
    "green",
    "red",
    "blue",
    "bright_cyan",
    "bright_magenta",
    "bright_yellow",
    "bright_green",
)


def human(value: float) -> str:
    """1200 -> 1.2k, 2_500_000 -> 2.5M; small values as they are."""
    a = abs(value)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:.3g}"


class Log10Formatter(AxisFormatter):
    """Ticks for an axis whose values are log10 of the data: at 1, 2, 5 x 10^k, labelled in data units."""

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        if not (math.isfinite(min_) and math.isfinite(max_)) or max_ <= min_:
            return []
        for mantissas in ((1,), (1, 3), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
            ticks = [math.log10(m) + e for e in range(math.floor(min_) - 1, math.ceil(max_) + 1) for m in mantissas]
            ticks = [t for t in ticks if min_ - 1e-9 <= t <= max_ + 1e-9]
            if len(ticks) >= 3 or mantissas[-1] == 9:
                break
        if len(ticks) > max_ticks:
            step = math.ceil(len(ticks) / max_ticks)
            ticks = ticks[::step]
        if len(ticks) < 2:  # a range inside one mantissa step: fall back to plain ticks of the data
            return NumericAxisFormatter().get_ticks(min_, max_, max_ticks)
        return ticks

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        return [human(10**t) for t in ticks]


class HumanFormatter(NumericAxisFormatter):
    """Linear ticks labelled 500k, 1M, 1.5M."""

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        return [human(t) for t in ticks]


def decimate(x: Sequence[float], y: Sequence[float], width: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ~2 points per column: each bucket's min and max, in x order (endpoints kept).
    Vectorised (one sort), since a view of many curves decimates every one of them per draw."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    width = max(int(width), 2)
    n = len(xa)
    if n <= 2 * width:
        return xa, ya
    bucket = ((np.arange(n) + 1) * width - 1) // n  # runs of consecutive points: bucket b starts at floor(b*n/width)
    finite = np.isfinite(ya)
    key = np.where(finite, ya, np.inf)  # a NaN is never a bucket's min or max unless all are
    order = np.lexsort((key, bucket))
    starts = np.flatnonzero(np.r_[True, bucket[order][1:] != bucket[order][:-1]])
    ends = np.r_[starts[1:], n] - 1
    lows = order[starts]
    finite_count = np.add.reduceat(finite[order].astype(np.int64), starts)
    highs = order[np.maximum(starts + finite_count - 1, starts)]  # the largest finite value
    index = np.unique(np.concatenate(([0, n - 1], lows, highs, order[ends][finite_count == 0])))
    return xa[index], ya[index]


@dataclass
class Series:
    """One thing to draw: a line (``marker`` None) or scatter points."""

    label: str | None
    x: list[float]
    y: list[float]
    style: str = "cyan"
    marker: str | None = None


@dataclass
class Figure:
    series: list[Series] = field(default_factory=list)
    log_x: bool = False
    log_y: bool = False
    x_label: str = ""
    y_label: str = ""
    legend: bool = True  # False when the screen shows its own legend
    vlines: list[float] = field(default_factory=list)  # vertical markers (a cursor), in data units


class XPlot(PlotWidget):
    """A PlotWidget fed whole figures; redraws at most ``max_hz`` times a second."""

    DEFAULT_CSS = """
    XPlot { height: 1fr; min-height: 8; }
    """

    def __init__(self, *, max_hz: float = 2.0, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, allow_pan_and_zoom=True)
        self.max_hz = max_hz
        self._pending: Figure | None = None
        self._shown: Figure | None = None
        self._drawn_at = -math.inf  # monotonic() of the last draw
        self._drawn_width = 0  # the width it was drawn (decimated) for
        self.draws = 0  # how many figures were actually drawn (tests and benches read it)
        # Narrower margins than textual-plot's, set before mount (no watcher): its own
        # on_mount, which Textual calls after this class's, lays the grid out once with them.
        self.set_reactive(XPlot.margin_left, 7)
        self.set_reactive(XPlot.margin_bottom, 2)
        self.set_reactive(XPlot.margin_top, 1)

    def on_mount(self) -> None:
        self.set_interval(1.0 / self.max_hz, self._flush)

    def show(self, figure: Figure) -> None:
        """Draws ``figure`` now after a quiet spell, else queues it for the next tick (an
        older one still waiting is dropped: coalesced). A plot not laid out yet draws it
        once it has its size (decimation needs the width)."""
        self._pending = figure
        if monotonic() - self._drawn_at >= 1.0 / self.max_hz:
            self._flush()

    def _flush(self) -> None:
        if not self.size.width:
            return  # not laid out yet: on_resize draws what waits
        figure, self._pending = self._pending, None
        if figure is None or figure == self._shown:
            return
        self._shown = figure
        self._drawn_at = monotonic()
        self.draws += 1
        self._draw(figure)

    def on_resize(self) -> None:
        """Draws the figure that waited for a size; a plot that changed width redraws what
        it shows (decimation depends on the width; a new height textual-plot redraws
        itself, and layouts settling resize a plot several times as a screen opens)."""
        if self._pending is not None:
            self._flush()
        elif self._shown is not None and self.size.width != self._drawn_width:
            self._draw(self._shown)

    def _render_plot(self) -> None:
        """textual-plot's render, with the canvas refreshed once at the end rather than once
        per cell set (which made drawing many curves cost a widget refresh per cell). Empty
        axes are not drawn for a figure that waits for the plot's size: it follows at once."""
        if self._shown is None and self._pending is not None:
            return
        canvases = list(self.query(Canvas))
        with ExitStack() as stack:
            for canvas in canvases:
                stack.enter_context(canvas.batch_refresh())
            super()._render_plot()

    def _render_line_plot(self, dataset) -> None:
        """textual-plot's braille line, its cells computed for the whole curve at once
        (``raster``: the same cells, without a Python loop per pixel)."""
        if not dataset.hires_mode:
            super()._render_line_plot(dataset)
            return
        canvas = self.query_one("#plot", Canvas)
        limits = (self._x_min, self._x_max, self._y_min, self._y_max)
        px, py = hires_points(np.asarray(dataset.x, float), np.asarray(dataset.y, float), limits, self._scale_rectangle)
        for x, y, char in line_cells(canvas, px, py, dataset.hires_mode):
            canvas.set_pixel(x, y, char, dataset.line_style)

    def _pad_limits(self, drawn: list) -> None:
        """Limits a little wider than the data: textual-plot maps the largest x and y onto
        the frame itself, where a marker would be drawn over (and lost)."""
        if not drawn:
            self.set_xlimits(None, None)
            self.set_ylimits(None, None)
            return
        for values, setter, share in ((1, self.set_xlimits, 0.02), (2, self.set_ylimits, 0.05)):
            lo = min(float(np.min(d[values])) for d in drawn)
            hi = max(float(np.max(d[values])) for d in drawn)
            pad = (hi - lo) * share or max(abs(hi) * share, 1e-6)
            setter(lo - pad, hi + pad)

    def _draw(self, figure: Figure) -> None:
        self._drawn_width = self.size.width
        self.clear()
        width = max(self.size.width - self.margin_left - 2, 10)
        self.set_x_formatter(Log10Formatter() if figure.log_x else HumanFormatter())
        self.set_y_formatter(Log10Formatter() if figure.log_y else HumanFormatter())
        self.set_xlabel(figure.x_label)
        self.set_ylabel(figure.y_label)
        labelled = False
        drawn = []
        for s in figure.series:
            x, y = _transform(s.x, figure.log_x), _transform(s.y, figure.log_y)
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.any():
                drawn.append((s, x[ok], y[ok]))
        self._pad_limits(drawn)
        # Many curves at once are read for their shape, not their last wiggle: half the
        # points (one per column) halves the cost of drawing them.
        n_lines = sum(1 for s, _, _ in drawn if s.marker is None)
        buckets = width if n_lines <= MANY_LINES else width // 2
        for s, x, y in drawn:
            labelled |= s.label is not None
            if s.marker is None:
                x, y = decimate(x, y, buckets)
                self.plot(x, y, line_style=s.style, hires_mode=HiResMode.BRAILLE, label=s.label)
            else:
                x, y = decimate(x, y, width // 2)  # markers: at most about one per column
                self.scatter(x, y, marker=s.marker, marker_style=s.style, label=s.label)
        for v in figure.vlines:
            (at,) = _transform([v], figure.log_x)
            if np.isfinite(at):
                self.add_v_line(float(at), "bright_white")
        self.show_legend(LegendLocation.TOPRIGHT, is_visible=labelled and figure.legend)
        # Into the canvases now: textual-plot draws them when the plot itself is painted,
        # which leaves the canvases to be painted in one more frame.
        self.render()


def _transform(values: Sequence[float], log: bool) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if not log:
        return a
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, np.log10(np.where(a > 0, a, 1.0)), np.nan)
