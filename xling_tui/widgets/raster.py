"""Braille lines for many curves at once: the cells textual-plot draws, computed with numpy.

textual-plot draws a line curve point by point in Python (map each point, clip each
segment, walk it pixel by pixel with Bresenham's algorithm, group the pixels per cell):
about 1 ms per curve of 100 points. The compare view draws 50 such curves on every x-axis
switch, most of its 100 ms budget (``bench/tui_startup.py``). Here every segment of a
curve advances through the same integer steps together, as numpy arrays, and the cells
come out identical (``tests/tui/test_raster.py`` checks them against textual-plot's
own drawing); a segment that crosses the canvas edge is still clipped and walked by
the canvas's own code.
"""

from __future__ import annotations

from functools import cache
from math import floor

import numpy as np
from textual_hires_canvas import Canvas
from textual_hires_canvas.hires import HiResMode, hires_sizes, pixels


@cache
def braille_table(mode: HiResMode) -> tuple[list[str | None], int, int]:
    """The canvas's character for each set of sub-pixels of a cell, indexed by the bits of
    the cell's sub-pixels in row-major order (bit k: row k // width, column k % width)."""
    size = hires_sizes[mode]
    n = size.width * size.height
    table = pixels[mode]
    chars = [table.get(tuple((index >> k) & 1 for k in range(n))) for index in range(1 << n)]
    return chars, size.width, size.height


def hires_points(x: np.ndarray, y: np.ndarray, limits: tuple[float, float, float, float], region) -> tuple:
    """Data to canvas coordinates, the same floating-point operations textual-plot does
    (so the same floors follow)."""
    x_min, x_max, y_min, y_max = limits
    px = region.x + (x - x_min) * (region.right - region.x) / (x_max - x_min)
    py = region.bottom + (y - y_min) * (region.y - region.bottom) / (y_max - y_min)
    return px, py


def walk(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of every integer segment (x0, y0)-(x1, y1), stepped together exactly as
    the canvas's Bresenham loop steps one (its early stops included)."""
    dx = np.abs(x1 - x0)
    dy = -np.abs(y1 - y0)
    sx = np.where(x0 < x1, 1, -1)
    sy = np.where(y0 < y1, 1, -1)
    limit = np.maximum(dx, -dy) + 1
    out_x, out_y = [x0], [y0]
    x, y, err, count = x0.copy(), y0.copy(), dx + dy, np.ones_like(x0)
    live = np.flatnonzero(~((x == x1) & (y == y1)))
    while live.size:
        xl, yl, el = x[live], y[live], err[live]
        e2 = 2 * el
        step_x = e2 >= dy[live]
        stop = step_x & (xl == x1[live])
        step_x &= ~stop
        el = el + np.where(step_x, dy[live], 0)
        xl = xl + np.where(step_x, sx[live], 0)
        step_y = (e2 <= dx[live]) & ~stop
        stop_y = step_y & (yl == y1[live])
        step_y &= ~stop_y
        stop |= stop_y
        el = el + np.where(step_y, dx[live], 0)
        yl = yl + np.where(step_y, sy[live], 0)
        x[live], y[live], err[live] = xl, yl, el
        kept = live[~stop]
        out_x.append(x[kept])
        out_y.append(y[kept])
        count[kept] += 1
        live = kept[~((x[kept] == x1[kept]) & (y[kept] == y1[kept])) & (count[kept] <= limit[kept])]
    return np.concatenate(out_x), np.concatenate(out_y)


def line_cells(canvas: Canvas, px: np.ndarray, py: np.ndarray, mode: HiResMode) -> list[tuple[int, int, str]]:
    """(column, row, character) of every cell the curve through (px, py) touches, in canvas
    coordinates: what ``Canvas.draw_hires_lines`` would set for these segments."""
    chars, w, h = braille_table(mode)
    width, height = canvas._canvas_region.width, canvas._canvas_region.height
    x0, y0, x1, y1 = px[:-1], py[:-1], px[1:], py[1:]
    inside = (
        (x0 >= 0) & (x0 <= width - 1) & (x1 >= 0) & (x1 <= width - 1)
        & (y0 >= 0) & (y0 <= height - 1) & (y1 >= 0) & (y1 <= height - 1)
    )  # fmt: skip
    hx, hy = walk(
        np.floor(x0[inside] * w).astype(np.int64),
        np.floor(y0[inside] * h).astype(np.int64),
        np.floor(x1[inside] * w).astype(np.int64),
        np.floor(y1[inside] * h).astype(np.int64),
    )
    edge_x, edge_y = [hx], [hy]
    for i in np.flatnonzero(~inside):  # crossing the edge: the canvas's own clip and walk
        clipped = canvas._clip_line_cohen_sutherland(float(x0[i]), float(y0[i]), float(x1[i]), float(y1[i]))
        if clipped is not None:
            a, b, c, d = clipped
            line = canvas._get_line_coordinates(floor(a * w), floor(b * h), floor(c * w), floor(d * h))
            edge_x.append(np.array([p[0] for p in line], dtype=np.int64))
            edge_y.append(np.array([p[1] for p in line], dtype=np.int64))
    hx, hy = np.concatenate(edge_x), np.concatenate(edge_y)
    cx, cy = hx // w, hy // h
    on = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
    cx, cy = cx[on], cy[on]
    bits = np.left_shift(1, (hy[on] % h) * w + hx[on] % w)
    key = cy * width + cx
    if not key.size:
        return []
    order = np.argsort(key, kind="stable")
    key, bits = key[order], bits[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    merged = np.bitwise_or.reduceat(bits, starts)
    return [
        (int(k % width), int(k // width), char)
        for k, index in zip(key[starts].tolist(), merged.tolist(), strict=True)
        if (char := chars[index])
    ]
