"""Query results out of xling: CSV text for the CLI, and files for the SQL screen's export.

The SQL screen's connection may not touch other files, so a user's query never writes
one. An export runs the query in that sandbox (``db.user_sql.UserQuery``), streams the rows it
returns into a newline-delimited JSON file, and a separate in-memory DuckDB that runs only
xling's own statements reads them back with the result's column types and writes CSV,
Parquet or JSON next to the target, renamed into place when complete (a cancelled or
failed export leaves no half-written file). CSV lines end with ``\\n``, never ``\\r\\n``
(a shell reading ``xling sql ... -f csv | tail -1`` would get ``5\\r``), as DuckDB's own
CLI writes them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

import duckdb

from db.bulk import ndjson_source, sql_str
from db.store import QueryError, StoreError
from db.user_sql import UserQuery

FORMATS = {".csv": "csv", ".parquet": "parquet", ".json": "json"}
_COPY_OPTIONS = {"csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet", "json": "FORMAT json, ARRAY true"}


class ExportError(StoreError):
    """An export the user can fix: a bad path, an unknown format. The message says which."""


def csv_writer(out: TextIO) -> Any:
    """The CSV writer every CSV of xling's goes through: lines end in ``\\n``."""
    return csv.writer(out, lineterminator="\n")


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A header line and one line per row, each ending in ``\\n``."""
    buf = io.StringIO()
    writer = csv_writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def export_format(path: Path) -> str:
    """csv, parquet or json, from the file's extension."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ExportError(f"{Path(path).name}: end the name with {', '.join(FORMATS)} to choose the format")
    return fmt


def check_target(path: Path) -> Path:
    """The absolute path an export may write: its folder exists, it is not a folder itself.
    Messages name the path as the user gave it."""
    given = Path(os.path.expanduser(str(path)))
    target = given.absolute()
    export_format(target)
    if target.is_dir():
        raise ExportError(f"{given} is a folder; give a file name")
    if not target.parent.is_dir():
        raise ExportError(f"{given.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise ExportError(f"{given.parent} is not writable")
    return target


def export_query(query: UserQuery, path: Path) -> int:
    """Runs ``query`` (read-only, cancellable) and writes its whole result to ``path``
    (replacing it: ask the user first); returns the number of rows written."""
    target = check_target(path)
    fmt = export_format(target)
    with tempfile.TemporaryDirectory(prefix=".xling-export-", dir=target.parent) as tmp:
        rows_file = Path(tmp) / "rows.ndjson"
        staged = Path(tmp) / f"out{target.suffix}"
        with query.open() as result:
            if not result.columns:
                raise QueryError("the statement returns no rows to export")
            names = _unique(result.columns)
            count = _write_ndjson(rows_file, names, result.batches())
        _copy(rows_file, names, result.types, staged, fmt)
        os.replace(staged, target)
    return count


def _unique(names: list[str]) -> list[str]:
    """Column names made distinct (``SELECT 1, 1`` has two columns named 1): x, x_2, ..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _write_ndjson(path: Path, names: list[str], batches: Iterator[list[tuple]]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", errors="replace") as fh:
        for batch in batches:
            for row in batch:
                fh.write(json.dumps(dict(zip(names, row)), default=_json_value, ensure_ascii=False) + "\n")
            count += len(batch)
    return count


def _json_value(value: Any) -> Any:
    """Values JSON has no type for, as text DuckDB casts back to the column's type."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot export a {type(value).__name__}")


def _copy(rows_file: Path, names: list[str], types: list[str], target: Path, fmt: str) -> None:
    """xling's own statements in a private in-memory database: read the rows, write the file."""
    if not names:
        raise ExportError("the query has no columns to export")
    source = ndjson_source(rows_file, dict(zip(names, types)))
    columns = ", ".join('"' + n.replace('"', '""') + '"' for n in names)
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"COPY (SELECT {columns} FROM {source}) TO {sql_str(str(target))} ({_COPY_OPTIONS[fmt]})")
    except duckdb.Error as exc:
        raise ExportError(f"could not write {target.suffix[1:]}: {exc}") from None
    finally:
        con.close()
