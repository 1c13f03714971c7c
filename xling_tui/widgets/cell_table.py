"""A DataTable that draws its ``Cell`` values without going through Rich.

DataTable renders every cell it has not cached as a small Rich document: the value in a
``Padding`` in a ``Styled``, through ``console.render_lines`` twice (pad, split into
lines, crop). For a ``Cell`` (one line of text that fits its column) the result is always
one line: the padding, the cell's own segments, the fill to the column's width and the
padding, every segment styled as ``Styled`` does (the table's and the component's style
under it, the cursor's over it). ``CellTable`` builds that line directly: about 12 ms of
the experiment view's first paint (17 rows x 7 columns, ``bench/tui_startup.py``).

Anything else (the header, row labels, fixed rows and columns, a value that is not a
``Cell``, a cell cut to its column, rows taller than one line) is DataTable's own drawing.
``tests/tui/test_cell_table.py`` compares the two segment for segment. The method it
replaces is DataTable's private ``_render_cell`` (Textual 8.x; pyproject caps textual <9).
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from xling_tui.widgets.cell import Cell


class CellTable(DataTable[Any]):
    """A DataTable whose one-line ``Cell`` values are drawn as their segments."""

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        # the header and row labels (index -1), fixed rows and columns: DataTable's styles
        if row_key is None or column_key is None or row_index < self.fixed_rows or column_index < self.fixed_columns:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )  # DataTable's own key: the same entry either way
        lines = self._cell_render_cache.get(cache_key)
        if lines is None:
            lines = self._cell_line(row_key, row_index, column_index, base_style, width, cursor, hover)
            if lines is None:
                return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cell_render_cache[cache_key] = lines
        return lines

    def _cell_line(
        self,
        row_key: RowKey,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool,
        hover: bool,
    ) -> list[list[Segment]] | None:
        """The cell's one line as DataTable would draw it, or None where it is not a Cell
        that fits (DataTable draws those itself)."""
        value = self._get_row_renderables(row_index)[1][column_index]
        pad = self.cell_padding
        inner = width - 2 * pad
        if not isinstance(value, Cell) or self.rows[row_key].height != 1 or not value.fits(inner):
            return None
        component_style, post_style = self._get_styles_to_render_cell(
            False,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        console = self.app.console
        line = list(value.segments(console))  # the spaces around it have no style of their own
        if inner > value.width:
            line.append(Segment(" " * (inner - value.width), None))
        if pad:
            line = [Segment(" " * pad, None), *line, Segment(" " * pad, None)]
        meta = Style.from_meta({"row": row_index, "column": column_index})  # where a click lands
        styled = Segment.apply_style(
            line, style=base_style + meta + component_style, post_style=console.get_style(post_style)
        )
        return [list(styled)]
