"""What the CLI prints: user-facing messages, result tables, CSV and JSON.

Messages and cells carry the user's own text (file names, ``[experiments.NAME]``,
SQL values), which rich would read as markup and eat; so they are printed as
``rich.text.Text``, styled around the text, never by formatting it into markup.
CSV and JSON are written batch by batch, so a result of millions of rows streams
through without being held in memory; a table is capped and says how many rows it
left out.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from xling_tui.sql_value import value_text

console = Console()
err_console = Console(stderr=True)

Row = Sequence[Any]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Prints ``error: MESSAGE`` (the message verbatim) and returns the Exit to raise."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    """A problem that does not stop the command (results kept elsewhere, a skipped ingest)."""
    err_console.print(Text(message, style="yellow"), highlight=False, soft_wrap=True)


def print_table(columns: Sequence[str], rows: Iterable[Row], left_out: int | None = None) -> None:
    table = Table(header_style="bold", show_lines=False)
    for c in columns:
        table.add_column(Text(c))
    n = 0
    for r in rows:
        table.add_row(*(value_text(v) for v in r))
        n += 1
    console.print(table)
    more = f"; {left_out} more not shown (add a LIMIT, or --format csv|json for every row)" if left_out else ""
    console.print(Text(f"{n} row(s){more}", style="dim"))


def write_csv(columns: Sequence[str], batches: Iterable[Sequence[Row]], out: TextIO) -> None:
    """Lines end in ``\\n`` (``db.export.csv_writer``), as DuckDB's own CLI writes them."""
    from db.export import csv_writer

    writer = csv_writer(out)
    writer.writerow(columns)
    for batch in batches:
        writer.writerows(batch)


def write_json(columns: Sequence[str], batches: Iterable[Sequence[Row]], out: TextIO) -> None:
    """A JSON array of objects, one per line, written as the rows arrive."""
    out.write("[")
    sep = "\n"
    for batch in batches:
        for r in batch:
            out.write(sep + json.dumps(dict(zip(columns, r)), default=str, ensure_ascii=False))
            sep = ",\n"
    out.write("\n]\n")


def stop_writing_stdout() -> None:
    """After a reader closed the pipe: later writes (and the flush at exit) go nowhere
    instead of raising BrokenPipeError (Python's documented recipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
