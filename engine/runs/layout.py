"""Where a database's artefacts live: one folder beside the DuckDB file, and a run's files.

``results.duckdb`` keeps its runs in ``results.runs/runs/<run_id>/`` and the experiment
definitions it has seen in ``results.runs/experiments/<name>.json``. The folder alone
can rebuild the database. The names of the files in a run folder are defined here and
nowhere else.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

SPEC_FILE = "spec.json"  # the resolved RunSpec; its hash is the run id
EVENTS_FILE = "events.jsonl"  # everything the run reported, append-only (engine.runs.events)
WORKER_LOG = "worker.log"  # the worker's stdout and stderr
STOP_FILE = "stop.request"  # a worker that sees this file in its run folder checkpoints and stops
CLAIM_FILE = ".launcher"  # the pid of the launcher that owns the run (engine.runs.claims)
ANNOTATIONS_FILE = "annotations.json"  # the user's tags and note, kept across database rebuilds
CHECKPOINT_FILE = "checkpoint.pt"  # model, optimiser and loss accumulators for an exact resume
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.pt"  # the one before it: the fallback if the newest is damaged
FINAL_MODEL_FILE = "model.pt"  # the trained model's weights

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


# A name that is also a file name: letters, digits, _ . + - and inner spaces; no
# separator, no control character, no leading dot (so neither '..' nor a hidden file).
_SAFE_NAME = re.compile(r"\w(?:[\w.+ -]{0,98}[\w.+-])?")


def name_problem(name: str) -> str | None:
    """Why an experiment's name cannot name its files, or None if it can.

    Experiment names come from experiments files and run folders, neither trusted to
    stay inside ``<db>.runs/``: a name is checked here before it becomes a path."""
    if _SAFE_NAME.fullmatch(name):
        return None
    return (
        f"{name!r} cannot be an experiment name: use up to 100 letters, digits, '_', '-', '.', '+' "
        "or inner spaces, starting with a letter or digit (it names files)"
    )


def experiment_file(root: Path, name: str) -> Path:
    """``<root>/experiments/<name>.json``; a name that is not a plain file name is refused."""
    problem = name_problem(name)
    if problem:
        raise ValueError(problem)
    return Path(root) / "experiments" / f"{name}.json"


def cache_dir() -> Path:
    """Tokenizers and token arrays, shared by every database on the machine."""
    env = os.environ.get("XLING_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xling"


def request_stop(run_dir: Path) -> None:
    """Asks a worker anywhere that shares this folder to checkpoint and stop."""
    (Path(run_dir) / STOP_FILE).write_text(f"{time.time()}\n")


def clear_stop(run_dir: Path) -> None:
    (Path(run_dir) / STOP_FILE).unlink(missing_ok=True)
