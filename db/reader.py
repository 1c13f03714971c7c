"""``db.connect()``: a read-only connection for your own notebooks and scripts.

DuckDB refuses a read-only open while another process holds the file read-write,
which xling does for every ingest (milliseconds to a second, every 10 s during
``xling run``). A plain ``duckdb.connect(path, read_only=True)`` therefore fails now
and then with "Could not set lock"; this one waits the ingest out, and checks that the
file is an xling results database that this xling understands. docs/database.md says
what a reader can count on.

    import db
    with db.connect("xling.duckdb") as con:
        con.sql("SELECT * FROM runs").df()
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from db.store import Store
from engine.runs.layout import default_db_path


def connect(path: Path | str | None = None, wait: float = 30.0) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the results database at ``path`` ($XLING_DB or
    ./xling.duckdb by default), waiting up to ``wait`` seconds while a writer holds it.

    Raises ``db.StoreBusy`` (a read-write session kept it longer than ``wait``) or
    ``db.StoreError`` (no such database, not an xling database, a newer or older schema),
    each with a message to show as is. Close the connection when done (``with``): while
    it is open, xling cannot ingest, and results wait in the run logs.
    """
    store = Store(path if path is not None else default_db_path())
    return store.open_reader(wait)
