"""How a value a query returned is shown, in the SQL screen and by ``xling sql`` alike.

NULL dimmed (a NULL and the string 'NULL' must look different), floats to 6 significant
digits (DuckDB hands back doubles such as 2.9000000000000004), anything else verbatim:
a result is data, so '[/bold]' is text, never markup. Imports neither textual nor typer,
so both front ends can use it.
"""

from __future__ import annotations

from rich.text import Text


def value_text(value: object) -> Text:
    """``value`` as one piece of styled text."""
    if value is None:
        return Text("NULL", style="dim", end="")
    if isinstance(value, float):
        return Text(f"{value:.6g}", end="")
    return Text(str(value), end="")
