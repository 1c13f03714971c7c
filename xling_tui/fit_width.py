"""Rich tables that fit a terminal: one line per row, the least useful columns left out first.

A table of runs is read row by row; a cell wrapped over three lines (``exper…`` above
``iment``, a pid under its host) breaks that. So every cell stays on one line, and when
the table is wider than the console, whole columns go, in the order their priority says
(lowest first), until it fits; what is left out is said under the table. Only the
columns marked essential stay whatever the width (they are truncated with an ellipsis
as a last resort). A wide terminal shows every column. Used by ``xling status`` and
``xling report`` (and anything else that prints runs as rows); no textual here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """A column: its header, how long it survives a narrow terminal, how it is aligned."""

    header: str
    priority: int = 50  # lower goes first when the table is too wide
    essential: bool = False  # never left out (truncated instead, if nothing else helps)
    justify: str = "left"


def fitted_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], width: int, **table_options
) -> tuple[Table, list[str]]:
    """The table with as many columns as fit ``width``, and the headers left out.

    Cells are rich markup strings or ``Text``; every cell is kept on one line.
    """
    keep = list(range(len(columns)))
    droppable = sorted((i for i, c in enumerate(columns) if not c.essential), key=lambda i: columns[i].priority)
    table = _build(columns, rows, keep, **table_options)
    for i in droppable:
        if _width(table) <= width:
            break
        keep.remove(i)
        table = _build(columns, rows, keep, **table_options)
    dropped = [columns[i].header for i in range(len(columns)) if i not in keep]
    return table, dropped


def print_fitted(
    console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], **table_options
) -> list[str]:
    """Prints the fitted table and, when columns were left out, one dim line naming them."""
    table, dropped = fitted_table(columns, rows, console.width, **table_options)
    console.print(table)
    if dropped:
        console.print(
            f"[dim]not shown at {console.width} columns: {', '.join(dropped)} (wider terminal or -f csv/json)[/]",
            highlight=False,
        )
    return dropped


def _build(columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], keep: list[int], **options) -> Table:
    options = {"box": box.SIMPLE_HEAD, "header_style": "bold", "pad_edge": False, "show_edge": False} | options
    table = Table(**options)
    for i in keep:
        table.add_column(columns[i].header, no_wrap=True, overflow="ellipsis", justify=columns[i].justify)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


def _width(table: Table) -> int:
    console = Console(width=100_000)
    return Measurement.get(console, console.options, table).maximum
