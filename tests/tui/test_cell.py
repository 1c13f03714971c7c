"""Table cells drawn as one line: the same cells Rich draws, never markup."""

from __future__ import annotations

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from xling_tui.widgets.cell import Cell, cell


def lines(renderable, width: int) -> list:
    console = Console(width=80, color_system="truecolor")
    return console.render_lines(Padding(renderable, (0, 1)), console.options.update_width(width), pad=True)


def test_a_cell_draws_what_rich_draws_for_its_text():
    for text in (Text("plain"), Text("━━", style="bold cyan"), Text.assemble(("1.05", "bold"), " [1.0, 1.1] n=4")):
        for width in (text.cell_len + 2, text.cell_len + 8):
            assert lines(Cell(text), width) == lines(text, width), (text, width)


def test_text_that_does_not_fit_or_is_aligned_is_drawn_as_rich_draws_it():
    long, right = Text("a long run name"), Text("12.5", justify="right")
    assert lines(Cell(long), 8) == lines(long, 8)
    assert lines(Cell(right), 10) == lines(right, 10)


def test_a_string_is_literal_never_markup():
    shown = cell("[bold]not bold[/bold] [1.0, 2.0]")
    assert str(shown) == "[bold]not bold[/bold] [1.0, 2.0]"
    assert all(not segment.style for line in lines(shown, 40) for segment in line if segment.text.strip())
    assert cell(1.5) == 1.5
