"""xling's results database: a DuckDB cache of the run folders (see ``db.store``)."""

from db.ingest import IngestStats
from db.store import SCHEMA_VERSION, QueryError, QueryResult, Store, StoreBusy, StoreError

__all__ = ["IngestStats", "QueryError", "QueryResult", "SCHEMA_VERSION", "Store", "StoreBusy", "StoreError"]
