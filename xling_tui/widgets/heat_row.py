"""A row of coloured cells, one per value: per-layer hidden-state similarity at a glance.

Colours are background names from the 16-colour ANSI set (no true colour needed over
SSH) and every cell also prints its number, so the row reads in monochrome too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.widgets import Static

# Low to high similarity.
RAMP = ("on blue", "on cyan", "on green", "on yellow", "on red")


def heat_text(
    label: str, values: Sequence[float | None], lo: float = 0.0, hi: float = 1.0, label_width: int = 10, cell: int = 6
) -> Text:
    out = Text(f"{label[:label_width]:<{label_width}}", style="bold")
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(f"{'—':^{cell}}")
            continue
        k = 0 if hi <= lo else min(len(RAMP) - 1, max(0, int((v - lo) / (hi - lo) * len(RAMP))))
        out.append(f"{v:^{cell}.2f}", style=f"black {RAMP[k]}")
    return out


def heat_header(label: str, n: int, label_width: int = 10, cell: int = 6) -> Text:
    """'layer  emb   1    2 ...': 0 is the embedding output, k the residual stream after block k."""
    names = ["emb", *[str(i) for i in range(1, n)]]
    return Text(f"{label[:label_width]:<{label_width}}" + "".join(f"{n:^{cell}}" for n in names), style="dim")


class HeatRow(Static):
    """Rows of labelled heat cells under one header."""

    DEFAULT_CSS = """
    HeatRow { height: auto; }
    """

    def show(
        self, rows: Mapping[str, Sequence[float | None]], header: str = "layer", lo: float = 0.0, hi: float = 1.0
    ) -> None:
        if not rows:
            self.update(Text("no hidden-state similarity yet (measured at the end of training)", style="italic"))
            return
        width = max(len(v) for v in rows.values())
        text = heat_header(header, width)
        for label, values in rows.items():
            text.append("\n")
            text.append_text(heat_text(label, list(values), lo, hi))
        self.update(text)
