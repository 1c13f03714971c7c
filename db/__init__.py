"""xling's results database: a DuckDB cache of the run folders (see ``db.store``).

``db.connect()`` is the one public entry for your own code: a read-only connection
that waits out an ingest (``db.reader``; docs/database.md says what it promises).
"""

from db.ingest import IngestStats
from db.reader import connect
from db.store import SCHEMA_VERSION, QueryError, QueryResult, Store, StoreBusy, StoreError, StoreReadOnly

__all__ = [
    "IngestStats",
    "QueryError",
    "QueryResult",
    "SCHEMA_VERSION",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreReadOnly",
    "connect",
]
