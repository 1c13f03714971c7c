"""Where a database's artefacts live: one folder beside the DuckDB file.

``results.duckdb`` keeps its runs in ``results.runs/runs/<run_id>/`` (spec.json,
events.jsonl, checkpoints, worker.log) and the experiment definitions it has seen in
``results.runs/experiments/<name>.json``. The folder alone can rebuild the database.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = "xling.duckdb"


def default_db_path() -> Path:
    return Path(os.environ.get("XLING_DB", DEFAULT_DB))


def artefacts_root(db_path: Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(db_path.stem + ".runs")


def runs_dir(db_path: Path) -> Path:
    return artefacts_root(db_path) / "runs"


def run_dir(db_path: Path, run_id: str) -> Path:
    return runs_dir(db_path) / run_id


def experiments_dir(db_path: Path) -> Path:
    return artefacts_root(db_path) / "experiments"


def cache_dir() -> Path:
    """Tokenizers and token arrays, shared by every database on the machine."""
    env = os.environ.get("XLING_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xling"
