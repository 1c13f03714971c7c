"""A DataTable cell that is one line of text, drawn without Rich's paragraph machinery.

DataTable draws every cell through Rich: a ``str`` is parsed as markup each time it is
measured or drawn (so a '[' in a run name could be taken for a tag), and a ``Text`` is
wrapped, justified and split into lines as a paragraph, for what is one line cut to its
column. That was about 40% of the experiment view's first paint
(``bench/tui_startup.py``). A ``Cell`` hands DataTable the line's segments as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text


class Cell:
    """One line of styled text, left-aligned; anything else is drawn as the Text it is."""

    __slots__ = ("text", "width", "_one_line")

    def __init__(self, text: Text) -> None:
        self.text = text
        self.width = text.cell_len
        self._one_line = text.justify in (None, "default", "left") and "\n" not in text.plain

    def __str__(self) -> str:
        return self.text.plain

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def fits(self, width: int) -> bool:
        """Whether the cell is drawn as its own segments in ``width`` cells (else Rich's way)."""
        return self._one_line and self.width <= width

    def segments(self, console: Console) -> Iterable[Segment]:
        """The line as segments, for a cell that ``fits``."""
        text = self.text
        if text.spans:
            return text.render(console, end="")
        # Text.render leaves the base style out when there are no spans
        return [Segment(text.plain, console.get_style(text.style) if text.style else None)]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.fits(options.max_width):
            yield from self.segments(console)
        else:
            yield self.text  # cut, aligned or several lines: Rich's own way


def cell(value: Any) -> Any:
    """A table value as a Cell: a str literally (never markup), a Text with its styles;
    other values (numbers, renderables) as DataTable draws them."""
    if isinstance(value, str):
        return Cell(Text(value, end=""))
    if type(value) is Text:
        return Cell(value)
    return value
