"""Rows into DuckDB in bulk: NDJSON files read by one ``read_json`` statement, and how
times are stored. Shared by the ingest and the derived analysis, which both write
many rows inside one short write-locked transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def utc_timestamp(unix: float) -> datetime:
    """How a unix time is stored: naive UTC, so no session time zone can shift it."""
    return datetime.fromtimestamp(unix, UTC).replace(tzinfo=None)


def unix_time(ts: datetime | None) -> float | None:
    """A stored time back as unix seconds (``stamp`` of it gives the stored value again)."""
    return None if ts is None else ts.replace(tzinfo=UTC).timestamp()


def iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(sep=" ", timespec="microseconds")


def stamp(unix: float | None) -> str | None:
    """Converted here rather than in SQL so that comparisons with stored values are exact."""
    return None if unix is None else iso(utc_timestamp(unix))


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def ndjson_source(path: Path, columns: dict[str, str]) -> str:
    cols = ", ".join(f"{sql_str(k)}: {sql_str(v)}" for k, v in columns.items())
    return f"read_json({sql_str(str(path))}, format='newline_delimited', columns={{{cols}}})"


def write_ndjson(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """A lone surrogate (valid in Python's JSON, not in DuckDB's) becomes '?' rather
    than failing every future ingest on the same line."""
    with open(path, "w", encoding="utf-8", errors="replace") as fh:
        for row in rows:
            fh.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")
    return path
