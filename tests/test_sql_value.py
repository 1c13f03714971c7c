"""A query's values look the same in the SQL screen and in `xling sql`."""

from __future__ import annotations

import pytest
from rich.console import Console

from xling_tui.cli.output import print_table
from xling_tui.screens.sql import result_cell
from xling_tui.sql_value import value_text


def test_null_is_dimmed_floats_have_six_digits_text_is_verbatim():
    assert value_text(None).plain == "NULL" and "dim" in str(value_text(None).style)
    assert not value_text("NULL").style  # the string 'NULL' is not a NULL
    assert value_text(0.1 + 0.2).plain == "0.3"
    assert value_text(float("inf")).plain == "inf"
    assert value_text(12345678.9).plain == "1.23457e+07"
    assert value_text("[/bold]").plain == "[/bold]"
    assert value_text(7).plain == "7"


@pytest.mark.parametrize("value", [None, 0.1 + 0.2, "NULL", "[red]x", 3])
def test_both_front_ends_show_the_same_text(value, monkeypatch):
    recorded = Console(record=True, width=80, color_system="truecolor")
    monkeypatch.setattr("xling_tui.cli.output.console", recorded)
    print_table(["v"], [(value,)])
    cli = recorded.export_text()
    shown = result_cell(value)
    assert shown.text.plain in cli
    assert shown.text.style == value_text(value).style


def test_the_screen_cuts_long_text():
    assert result_cell("x" * 100, width=10).text.plain == "x" * 9 + "…"
