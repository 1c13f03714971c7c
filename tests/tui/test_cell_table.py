"""CellTable draws its Cells as DataTable draws them, segment for segment."""

from __future__ import annotations

import random

import pytest
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from xling_tui.widgets.cell import Cell, cell
from xling_tui.widgets.cell_table import CellTable

WORDS = ["", "a", "mono", "[bold]x[/]", "1.05 [1.0, 1.1] n=4", "日本語", "é", "━━", "EN1 / 100%", "a long run name"]
STYLES = ["", "bold", "dim", "yellow", "bold #ff0000 on blue", "italic underline", "reverse"]


def random_value(rng: random.Random) -> object:
    """A Cell (plain, styled, with spans, wide characters, too wide for its column) or a
    value DataTable draws itself."""
    kind = rng.randrange(7)
    word = rng.choice(WORDS)
    if kind == 0:
        return cell(word)
    if kind == 1:
        return cell(Text(word, style=rng.choice(STYLES), end=""))
    if kind == 2:
        text = Text(end="")
        for _ in range(rng.randrange(1, 4)):
            text.append(rng.choice(WORDS) or "-", style=rng.choice(STYLES) or None)
        return Cell(text)
    if kind == 3:
        return Cell(Text(word, justify="right", end=""))  # aligned: DataTable's way
    if kind == 4:
        return rng.random() * 100  # not a Cell: DataTable's way
    if kind == 5:
        return Text(word, style=rng.choice(STYLES))
    return cell(word * 4)  # often wider than its column


class Tables(App[None]):
    def compose(self) -> ComposeResult:
        yield CellTable(id="t")


def compare_every_cell(table: CellTable) -> tuple[int, int]:
    """(cells compared, of which drawn by CellTable's own line) - asserting each is equal."""
    compared = own = 0
    for row in range(-1, len(table.rows)):
        for column in range(len(table.columns)):
            width = table.columns[table._column_locations.get_key(column)].get_render_width(table)
            for base in (table.rich_style, Style(bgcolor="grey11"), Style(color="red", bold=True)):
                for cursor, hover in ((False, False), (True, False), (False, True), (True, True)):
                    table._cell_render_cache.clear()
                    expected = DataTable._render_cell(table, row, column, base, width, cursor, hover)
                    table._cell_render_cache.clear()
                    drawn = table._render_cell(row, column, base, width, cursor, hover)
                    assert drawn == expected, (row, column, base, cursor, hover)
                    compared += 1
                    row_key = table._row_locations.get_key(row)
                    if row_key is not None and table._cell_line(row_key, row, column, base, width, cursor, hover):
                        own += 1
    return compared, own


@pytest.mark.asyncio
async def test_cells_are_drawn_as_datatable_draws_them():
    rng = random.Random(7)
    app = Tables()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(CellTable)
        own_total = 0
        for padding, fixed, zebra, cursor_type, narrow in (
            (1, 0, False, "row", False),
            (0, 0, True, "cell", False),
            (2, 1, True, "column", True),
            (1, 0, False, "none", True),
        ):
            table.clear(columns=True)
            table.cell_padding, table.fixed_columns, table.fixed_rows = padding, fixed, fixed
            table.zebra_stripes, table.cursor_type = zebra, cursor_type
            for i in range(6):  # some columns of a set width: values wider than that are cut
                table.add_column(f"c{i}", width=6 if narrow and i % 2 else None)
            for _ in range(12):
                table.add_row(*(random_value(rng) for _ in range(6)), height=1)
            await pilot.pause()
            compared, own = compare_every_cell(table)
            assert compared == 13 * 6 * 12
            own_total += own
        assert own_total > 600  # most cells took CellTable's own path, so the comparison means something
