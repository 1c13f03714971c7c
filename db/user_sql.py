"""A user's own SQL over the results: the one sandbox both front ends run it in.

``xling sql`` and the TUI's SQL screen run whatever the user types, and DuckDB can
read and write any file, attach and change other databases, and download extensions.
So a user's query runs on a read-only connection that is locked down before it sees
the user's text:

- external access off: no COPY to or from files, no ATTACH of another file, no
  ``read_csv``/``read_text``/``glob`` of other files, no URLs, no Python objects by
  name; extensions are neither installed nor loaded; and the configuration is locked,
  so no ``SET`` or ``RESET`` gives any of it back;
- only statements that read run (SELECT and its relatives DESCRIBE, SHOW, SUMMARIZE,
  FROM ...; EXPLAIN; PRAGMA; CALL; PIVOT). This is what keeps ``allow_files``, which
  opens chosen folders or files to DuckDB's readers, from letting COPY write into them.

``UserQuery`` streams its rows in batches, so neither a capped table nor a CSV of
millions of rows is ever held in memory whole, and ``cancel`` interrupts DuckDB from
another thread (the TUI's esc).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from db.store import QueryError, QueryResult, Store, StoreError

GUARANTEE = (
    "Read-only: only the results database is readable; nothing is written, attached, downloaded, "
    "installed or loaded (DuckDB's external access is off and its settings are locked)."
)
_READING = {
    duckdb.StatementType.SELECT,  # also DESCRIBE, SHOW, SUMMARIZE, FROM-first queries
    duckdb.StatementType.EXPLAIN,
    duckdb.StatementType.PRAGMA,
    duckdb.StatementType.CALL,
    duckdb.StatementType.MULTI,  # PIVOT
}
_WHY_NOT = {
    "COPY": "COPY writes or reads files; for a file of the results use --format csv (or json) > FILE",
    "EXPORT": "EXPORT writes files; for a file of the results use --format csv (or json) > FILE",
    "ATTACH": "ATTACH opens other databases; only the results database is readable",
    "LOAD": "INSTALL and LOAD fetch and run extensions",
}
BATCH_ROWS = 10_000


class QueryCancelled(StoreError):
    """The user cancelled the query."""


class QueryRefused(QueryError):
    """A statement that is not a read, refused before it runs."""


def check_statements(sql: str) -> None:
    """Refuses empty SQL and any statement that is not a read, naming the statement."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise QueryError(str(e)) from None
    if not statements:
        raise QueryRefused("no SQL statement given")
    for st in statements:
        if st.type not in _READING:
            kind = st.type.name
            why = _WHY_NOT.get(kind, "it would change the database or the session")
            raise QueryRefused(f"{kind} refused: user SQL is read-only ({why})")


def file_access(paths: Sequence[Path | str]) -> tuple[list[str], list[str]]:
    """(directories, files) DuckDB's readers may open, as absolute paths; a path that
    does not exist is refused, so that a typo is not silently an empty allowance."""
    dirs, files = [], []
    for p in paths:
        path = Path(p).expanduser()
        if not path.exists():
            raise StoreError(f"--allow-files {p}: no such file or directory")
        resolved = path.resolve()
        if resolved.is_dir():
            dirs.append(str(resolved).rstrip("/") + "/")
        else:
            files.append(str(resolved))
    return dirs, files


def lock_down(con: duckdb.DuckDBPyConnection, allow_files: Sequence[Path | str] = ()) -> None:
    """The sandbox settings, in the order DuckDB accepts them: what may be read first,
    then external access off, then the lock that keeps both."""
    dirs, files = file_access(allow_files)
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET allow_community_extensions = false")
    if dirs:
        con.execute("SET allowed_directories = ?", [dirs])
    if files:
        con.execute("SET allowed_paths = ?", [files])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


@dataclass
class Rows:
    """An open result: its column names and DuckDB types, and its rows in batches (read once)."""

    columns: list[str]
    types: list[str]  # DuckDB's type of each column, e.g. 'BIGINT', 'TIMESTAMP WITH TIME ZONE'
    _cursor: duckdb.DuckDBPyConnection | None
    _query: UserQuery

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[tuple[Any, ...]]]:
        while self._cursor is not None:
            try:
                batch = self._cursor.fetchmany(size)
            except duckdb.Error as e:
                raise self._query._error(e) from None
            if not batch:
                return
            yield batch


class UserQuery:
    """One query of the user's, run in the sandbox; ``cancel`` may come from any thread."""

    def __init__(self, store: Store, sql: str, *, allow_files: Sequence[Path | str] = (), wait: float = 10.0) -> None:
        self.store, self.sql, self.allow_files, self.wait = store, sql, tuple(allow_files), wait
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self.cancelled = False

    @contextmanager
    def open(self) -> Iterator[Rows]:
        """Runs the query; raises QueryRefused, QueryError (DuckDB's complaint), QueryCancelled."""
        check_statements(self.sql)
        if not self.store.db_path.exists():
            raise StoreError(f"{self.store.db_path} does not exist yet: no results to query")
        with self.store.connect(read_only=True, wait=self.wait) as con:
            with self._lock:
                if self.cancelled:
                    raise QueryCancelled("cancelled")
                self._con = con
            try:
                lock_down(con, self.allow_files)
                try:
                    cur = con.execute(self.sql)
                except duckdb.Error as e:
                    raise self._error(e) from None
                description = cur.description or []
                columns, types = [d[0] for d in description], [str(d[1]) for d in description]
                yield Rows(columns, types, cur if cur.description else None, self)
            finally:
                with self._lock:
                    self._con = None

    def run(self, max_rows: int, count_rest: bool = False) -> QueryResult:
        """At most ``max_rows`` rows; with ``count_rest`` the rows left out are counted
        (read and dropped batch by batch, never held)."""
        with self.open() as result:
            rows: list[tuple[Any, ...]] = []
            left_out = 0
            for batch in result.batches(min(BATCH_ROWS, max_rows + 1)):
                room = max_rows - len(rows)
                rows.extend(batch[:room])
                left_out += max(0, len(batch) - room)
                if left_out and not count_rest:
                    break
            if count_rest:
                for batch in result.batches():
                    left_out += len(batch)
        return QueryResult(result.columns, rows, truncated=left_out > 0, left_out=left_out if count_rest else None)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._con is not None:
                self._con.interrupt()

    def _error(self, e: duckdb.Error) -> StoreError:
        return QueryCancelled("cancelled") if self.cancelled else QueryError(str(e))
