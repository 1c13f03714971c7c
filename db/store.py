"""The results database: a DuckDB file kept up to date from the run folder beside it.

DuckDB lets one process open a file read-write, or many open it read-only, never
both. Workers, the TUI, a headless ``xling run`` and a user's own ``duckdb`` shell
must coexist, so nobody keeps a connection open: every operation opens, works and
closes, retrying while someone else holds the lock. Runs never write here at all;
they append to their own event logs, and whoever ingests next catches up, so a busy
database delays results but never loses them.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from db.analysis import refresh_finished
from db.bulk import utc_timestamp
from db.ingest import IngestStats, ingest_into, rollback
from engine.errors import XlingError
from engine.runs import layout

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
SCHEMA_SQL = SCHEMA_FILE.read_text(encoding="utf-8")
SCHEMA_VERSION = int(re.search(r"^-- @version (\d+)\s*$", SCHEMA_SQL, re.M).group(1))  # type: ignore[union-attr]
TABLES = (
    "schema_version",
    "experiments",
    "runs",
    "train_metrics",
    "evals",
    "ingest_state",
    "align_embeddings",
    "align_hidden",
    "align_gradients",
    "scaling_fits",
    "teff",
    "summary",
    "tokenizers",
    "probes",
)
TRY_WAIT = 0.5  # how long try_ingest waits: a UI tick, not a user-visible stall

Params = Sequence[Any] | Mapping[str, Any] | None


class StoreError(XlingError):
    """Anything the store reports to a user; the message is meant to be shown as is."""


class StoreBusy(StoreError):
    """Another process kept the file locked for longer than the caller would wait."""


class QueryError(StoreError):
    """DuckDB rejected a query; carries DuckDB's own message only."""


class SchemaOutdated(StoreError):
    """The file predates this xling; only a writer can rebuild it (query does so)."""


class StoreReadOnly(StoreError):
    """The file cannot be written here (a read-only file system, a read-only file or
    folder): it can be read, but new results cannot be ingested into it."""


class StoreDiskFull(StoreError):
    """An ingest found no space left; it changed nothing, and the logs keep every event."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False  # max_rows cut the result short
    left_out: int | None = None  # how many rows the cut left out, where counted

    def __len__(self) -> int:
        return len(self.rows)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


# DuckDB refuses a second, differently configured connection to a file within one
# process, so threads of one process take turns; other processes wait on the file lock.
_process_locks: dict[Path, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(path: Path) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(path, threading.Lock())


def _is_lock_conflict(exc: BaseException) -> bool:
    message = str(exc)
    if isinstance(exc, duckdb.IOException):
        return "Could not set lock" in message or "Conflicting lock" in message
    return isinstance(exc, duckdb.ConnectionException) and "different configuration" in message


def _holder(exc: BaseException | None) -> str:
    """'PID 123 (/usr/bin/python3)' from DuckDB's lock message, to tell the user whom to wait for."""
    m = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", str(exc or ""))
    if m:
        return f"PID {m.group(2)} ({m.group(1)})"
    return "another connection in this process" if isinstance(exc, duckdb.ConnectionException) else "another process"


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """0 for an empty file, None for a file that is not ours."""
    tables = {
        t
        for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    if "schema_version" not in tables:
        return 0 if not tables else None
    ((version,),) = con.execute("SELECT max(version) FROM schema_version").fetchall()  # no unfinished result
    return int(version) if version is not None else 0


def _build_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Drops and recreates our tables: the file is a cache, the folder refills it."""
    con.begin()
    try:
        con.execute("DROP VIEW IF EXISTS member_runs")  # views first: they depend on the tables
        for table in TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(SCHEMA_SQL)
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION, utc_timestamp(time.time())])
        con.commit()
    except BaseException:
        rollback(con)
        raise


class Store:
    """One results database and its artefacts folder (``engine.runs.layout``)."""

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path).expanduser().absolute()
        self.root = layout.artefacts_root(self.db_path)
        self._reading = threading.local()  # the connection ``reading`` holds for this thread

    def __repr__(self) -> str:
        return f"Store({str(self.db_path)!r})"

    def run_dir(self, run_id: str) -> Path:
        return layout.run_dir(self.db_path, run_id)

    # -- connections ---------------------------------------------------------------

    def read_only_reason(self) -> str | None:
        """Why this process cannot write the database here, or None. DuckDB writes the file
        and a ``.wal`` beside it, so both the file and its folder must be writable."""
        for path in (self.db_path, self.db_path.parent):
            if path.exists() and not os.access(path, os.W_OK):
                if os.statvfs(path).f_flag & os.ST_RDONLY:
                    return f"{path} is on a read-only file system"
                return f"{path} is not writable"
        return None

    def _refuse_read_only(self) -> None:
        why = self.read_only_reason()
        if why:
            raise StoreReadOnly(
                f"{why}: new results in {self.root} could not be ingested; showing what the database holds"
            )

    @contextmanager
    def connect(self, read_only: bool, wait: float) -> Iterator[duckdb.DuckDBPyConnection]:
        """A checked connection, closed on exit so the lock is held only as long as needed."""
        if not read_only:
            self._refuse_read_only()
        deadline = time.monotonic() + max(wait, 0.0)
        lock = _process_lock(self.db_path)
        if not lock.acquire(timeout=max(wait, 0.0)):
            raise StoreBusy(self._busy_message("another thread of this process", wait))
        try:
            con = self._open(read_only, _remaining(deadline), wait)
            try:
                self._check_schema(con, writable=not read_only)
                yield con
            finally:
                con.close()
        finally:
            lock.release()

    def open_reader(self, wait: float) -> duckdb.DuckDBPyConnection:
        """A checked read-only connection that the caller closes (``db.connect``): opening
        waits out a writer, and the connection holds no lock of this process, so the
        caller may keep it as long as it likes."""
        con = self._open(True, max(wait, 0.0), wait)
        try:
            self._check_schema(con, writable=False)
        except BaseException:
            con.close()
            raise
        return con

    def _open(self, read_only: bool, budget: float, wait: float) -> duckdb.DuckDBPyConnection:
        if self.db_path.is_dir():
            raise StoreError(f"{self.db_path} is a folder, not a results database: give the .duckdb file's path")
        if not self.db_path.exists():
            if read_only:
                raise StoreError(f"{self.db_path} does not exist yet; ingest creates it")
            self._create()
        retrying = Retrying(
            retry=retry_if_exception(_is_lock_conflict),
            stop=stop_before_delay(budget),
            wait=wait_exponential(multiplier=0.01, max=0.1) + wait_random(0, 0.02),
        )
        try:
            for attempt in retrying:
                with attempt:
                    return duckdb.connect(str(self.db_path), read_only=read_only)
        except RetryError as e:
            raise StoreBusy(self._busy_message(_holder(e.last_attempt.exception()), wait)) from None
        except duckdb.Error as e:
            if not read_only and ("Read-only file system" in str(e) or "Permission denied" in str(e)):
                raise StoreReadOnly(
                    f"cannot open {self.db_path} for writing ({e}): new results in {self.root} could not be ingested"
                ) from None
            raise StoreError(f"cannot open {self.db_path}: {e}") from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _create(self) -> None:
        """DuckDB writes a new file's header only after creating it, and a process that
        opens it in between is told it is 'not a valid DuckDB database file'. So a new
        database is built under a private name and linked into place complete."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.db_path.with_name(f".{self.db_path.name}.{os.getpid()}.{threading.get_ident()}.new")
        try:
            con = duckdb.connect(str(tmp))
            try:
                _build_schema(con)
            finally:
                con.close()
            try:
                os.link(tmp, self.db_path)  # atomic, and never replaces a file another process made
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                if not self.db_path.exists():
                    os.replace(tmp, self.db_path)
        except duckdb.Error as e:
            raise StoreError(f"cannot create {self.db_path}: {e}") from None
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)

    def _busy_message(self, holder: str, wait: float) -> str:
        return (
            f"{self.db_path} is busy: {holder} holds its lock; gave up after {wait:.1f} s. "
            "Nothing is lost: the run logs keep every event and a later ingest catches up."
        )

    def _check_schema(self, con: duckdb.DuckDBPyConnection, writable: bool) -> None:
        version = _schema_version(con)
        if version is None:
            raise StoreError(f"{self.db_path} is not an xling results database (it has no schema_version table)")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.db_path} was written by a newer xling (schema version {version}; this xling "
                f"understands up to {SCHEMA_VERSION}). Upgrade xling, or use another database file."
            )
        if version < SCHEMA_VERSION:
            if not writable:
                raise SchemaOutdated(f"{self.db_path} has schema version {version}; it needs an ingest to rebuild")
            _build_schema(con)

    # -- writing -------------------------------------------------------------------

    def ingest(self, wait: float = 30.0) -> IngestStats:
        """Everything new in the folder, in one transaction; waits up to ``wait`` s for the lock."""
        with self.connect(read_only=False, wait=wait) as con:
            try:
                return _ingest_and_refresh(con, self.root)
            except (duckdb.Error, OSError) as e:
                raise self._ingest_failed(e) from None

    def _ingest_failed(self, exc: BaseException) -> StoreError:
        """A full disk is named as such, with the file that could not be written."""
        message = str(exc)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            where = exc.filename or self.db_path
        elif "No space left on device" in message:
            quoted = re.search(r'"([^"]+)"', message)
            where = quoted.group(1) if quoted else self.db_path
        else:
            return StoreError(f"ingest into {self.db_path} failed: {message}")
        return StoreDiskFull(
            f"no space left on {where}: nothing was ingested, and every result waits in {self.root}; "
            "free some space and any xling command catches up"
        )

    def try_ingest(self) -> IngestStats | None:
        """For loops that ingest again soon anyway: None rather than a stall when busy.
        A database that cannot be written here raises StoreReadOnly: readers say so once
        and read what it holds."""
        try:
            return self.ingest(wait=TRY_WAIT)
        except StoreBusy:
            return None

    def rebuild(self, wait: float = 30.0) -> IngestStats:
        """Refills the file from the folder under one lock, so readers never see it missing."""
        with self.connect(read_only=False, wait=wait) as con:
            try:
                _build_schema(con)
                return _ingest_and_refresh(con, self.root)
            except (duckdb.Error, OSError) as e:
                raise self._ingest_failed(e) from None

    # -- reading -------------------------------------------------------------------

    def query(self, sql: str, params: Params = None, wait: float = 30.0, max_rows: int | None = None) -> QueryResult:
        """Read-only, so it runs beside other readers (and never blocks a later ingest for long)."""
        deadline = time.monotonic() + max(wait, 0.0)
        if not self.db_path.exists():
            self.ingest(wait=wait)
        try:
            return self._query(sql, params, _remaining(deadline), max_rows)
        except SchemaOutdated:
            self.ingest(wait=_remaining(deadline))
            return self._query(sql, params, _remaining(deadline), max_rows)

    @contextmanager
    def reading(self, wait: float = 30.0) -> Iterator[Store]:
        """One read-only connection for the queries this thread makes inside the block:
        a screen's many small reads pay for opening the file once, not once each. Ingest
        before the block, not inside it (the process holds the file for the block)."""
        if getattr(self._reading, "con", None) is not None:
            yield self
            return
        if not self.db_path.exists():
            self.ingest(wait=wait)
        with self.connect(read_only=True, wait=wait) as con:
            self._reading.con = con
            try:
                yield self
            finally:
                self._reading.con = None

    def _query(self, sql: str, params: Params, wait: float, max_rows: int | None) -> QueryResult:
        held = getattr(self._reading, "con", None)
        if held is not None:
            return _fetch(held, sql, params, max_rows)
        with self.connect(read_only=True, wait=wait) as con:
            return _fetch(con, sql, params, max_rows)


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Params, max_rows: int | None) -> QueryResult:
    try:
        cur = con.execute(sql, params)
        if cur.description is None:
            return QueryResult([], [])
        columns = [d[0] for d in cur.description]
        if max_rows is None:
            return QueryResult(columns, cur.fetchall())
        rows = cur.fetchmany(max_rows + 1)
    except duckdb.Error as e:
        raise QueryError(str(e)) from None
    return QueryResult(columns, rows[:max_rows], truncated=len(rows) > max_rows)


def _ingest_and_refresh(con: duckdb.DuckDBPyConnection, root: Path) -> IngestStats:
    """New events in; then, in a transaction of its own, the laws and TEffs that a run's
    finishing may have changed (derived tables may lag, measurements never wait on them)."""
    stats = ingest_into(con, root)
    refresh_finished(con, stats.finished, stats.changed_experiments)
    return stats
