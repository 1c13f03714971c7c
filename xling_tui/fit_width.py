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
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """A column: its header, how long it survives a narrow terminal, how it is aligned."""

    header: str
    priority: int = 50  # lower goes first when the table is too wide
    essential: bool = False  # never left out (truncated instead, if nothing else helps)
    justify: JustifyMethod = "left"


def fitted_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], width: int
) -> tuple[Table, list[str]]:
    """The table with as many columns as fit ``width``, and the headers left out.

    Cells are rich markup strings or ``Text``; every cell is kept on one line. The widths
    are summed from the cells (``table_width``) rather than measured on built tables,
    one build per dropped column, which a screen redrawing every refresh would pay for.
    """
    keep = _kept(columns, rows, width)
    return _build(columns, rows, keep), [c.header for i, c in enumerate(columns) if i not in keep]


def fit_columns(columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], width: int) -> list[str]:
    """The headers to leave out so that the rest fit ``width`` (the table is not built)."""
    keep = _kept(columns, rows, width)
    return [c.header for i, c in enumerate(columns) if i not in keep]


def _kept(columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], width: int) -> list[int]:
    """Indices of the columns kept: the droppable ones go, lowest priority first, until the rest fit."""
    natural = [max([cell_width(c.header), *(cell_width(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    keep = list(range(len(columns)))
    droppable = sorted((i for i, c in enumerate(columns) if not c.essential), key=lambda i: columns[i].priority)
    for i in droppable:
        if table_width([natural[k] for k in keep]) <= width:
            break
        keep.remove(i)
    return keep


def cell_width(cell: str | Text) -> int:
    """Terminal cells a one-line cell takes (markup counted as what it shows)."""
    return cell.cell_len if isinstance(cell, Text) else Text.from_markup(cell).cell_len


def table_width(widths: Sequence[int]) -> int:
    """The width of ``_build``'s table with columns this wide: a padding cell either side
    of each column and a separator between them, none at the outer edges."""
    return sum(widths) + 3 * max(len(widths) - 1, 0)


def print_fitted(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str | Text]]) -> list[str]:
    """Prints the fitted table and, when columns were left out, one dim line naming them."""
    table, dropped = fitted_table(columns, rows, console.width)
    console.print(table)
    if dropped:
        console.print(
            f"[dim]not shown at {console.width} columns: {', '.join(dropped)} (wider terminal or -f csv/json)[/]",
            highlight=False,
        )
    return dropped


def _build(columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], keep: list[int]) -> Table:
    """The table whose width ``table_width`` computes (change one, change the other)."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for i in keep:
        table.add_column(columns[i].header, no_wrap=True, overflow="ellipsis", justify=columns[i].justify)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table
