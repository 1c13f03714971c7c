"""Bringing the database up to date with the run folder, in one short transaction.

The caller holds DuckDB's write lock, so this module reads the stored offsets, reads
only the complete lines written since, and loads them in bulk: every kind of row is
written to a temporary NDJSON file and inserted with one ``INSERT ... SELECT FROM
read_json(...)`` statement (no per-row INSERTs, no pandas/pyarrow). Offsets are
committed in the same transaction as the rows they produced, so an ingest that dies
half way leaves nothing behind and the next one redoes it.

Per-run state (status, step, ...) is folded in Python by the launcher's own rules
(``engine.runs.fold``), continuing from the state stored by the previous ingest, so a
log ingested in one go or in many pieces gives the same row (and a rebuild from the
folder equals the live database).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import duckdb

from db.bulk import iso, ndjson_source, stamp, unix_time, write_ndjson
from engine.runs.coerce import as_float, as_int, as_lang_map, as_str, as_str_list, as_time
from engine.runs.events import BadLine, read_events
from engine.runs.fold import RunFold
from engine.runs.layout import ANNOTATIONS_FILE, EVENTS_FILE, SPEC_FILE
from engine.runs.status import RunStatus

_FOLD_TIMES = ("finished", "queued", "started", "last_seen")  # RunFold's unix times, stored as TIMESTAMP
_FOLD_COLUMNS = tuple(f.name for f in fields(RunFold))  # the columns of runs that hold a run's folded state


@dataclass
class IngestStats:
    """What one ingest changed; all zero when there was nothing new."""

    runs: int = 0  # runs with new events or a new/changed spec
    events: int = 0  # complete new log lines read
    train_rows: int = 0  # train_metrics rows written (after dropping repeated steps)
    eval_rows: int = 0
    align_rows: int = 0
    finished: list[str] = field(default_factory=list)  # runs that reached status done in this ingest
    experiments: int = 0  # experiments added or changed
    removed: int = 0  # runs whose folder had disappeared
    skipped: list[BadLine] = field(default_factory=list)  # log lines that are not events (each logged as a warning)


# -- reading the folder ----------------------------------------------------------


def _fold_row(run_id: str, fold: RunFold) -> dict[str, Any]:
    """A run's folded state as its row in ``runs`` (times as stored)."""
    row: dict[str, Any] = {"run_id": run_id, **asdict(fold)}
    for name in _FOLD_TIMES:
        row[name] = stamp(row[name])
    return row


def _stored_fold(row: tuple[Any, ...]) -> RunFold:
    """The state an earlier ingest stored (``_FOLD_COLUMNS`` order): where this ingest's events continue."""
    values = dict(zip(_FOLD_COLUMNS, row))
    for name in _FOLD_TIMES:
        values[name] = unix_time(values[name])
    values["status"] = RunStatus.parse(values["status"])
    return RunFold(**values)


@dataclass
class Batch:
    """Everything new in the folder since the stored offsets."""

    specs: list[dict[str, Any]] = field(default_factory=list)
    train: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)  # runs rows: each run's state, folded
    finished: list[str] = field(default_factory=list)  # runs that reported done in these events
    align: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kind -> rows
    offsets: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    gone_runs: list[str] = field(default_factory=list)
    gone_experiments: list[str] = field(default_factory=list)
    events: int = 0
    skipped: list[BadLine] = field(default_factory=list)

    def is_empty(self) -> bool:
        """Lets an idle ingest (a UI polling) skip the transaction and its fsync."""
        parts = (self.specs, self.states, self.offsets, self.experiments, self.gone_runs, self.gone_experiments)
        return not any(parts)


def _read_json_object(path: Path) -> dict[str, Any] | None:
    """None while the file is missing or half-written; the next ingest tries again."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _spec_row(run_id: str, run_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    model = spec.get("model")
    if isinstance(model, dict):
        model = model.get("name")
    return {
        "run_id": run_id,
        "experiment": as_str(spec.get("experiment")),
        "name": as_str(spec.get("name")),
        "kind": as_str(spec.get("kind")),
        "spec": spec,
        "model": as_str(model),
        "seed": as_int(spec.get("seed")),
        "languages": as_str_list(spec.get("languages")),
        "total_steps": as_int(spec.get("total_steps")),
        "total_tokens": as_int(spec.get("total_tokens")),
        "run_dir": str(run_dir),
    }


def _train_row(seq: int, run_id: str, ev: dict[str, Any]) -> dict[str, Any] | None:
    step = as_int(ev.get("step"))
    if step is None:
        return None
    return {
        "seq": seq,
        "run_id": run_id,
        "step": step,
        "tokens": as_int(ev.get("tokens")),
        "lr": as_float(ev.get("lr")),
        "loss": as_float(ev.get("loss")),
        "lang_loss": as_lang_map(ev.get("lang_loss")),
        "tokens_per_s": as_float(ev.get("tokens_per_s")),
        "time": stamp(as_time(ev.get("time"))),
    }


def _eval_row(seq: int, run_id: str, ev: dict[str, Any]) -> dict[str, Any] | None:
    step, language = as_int(ev.get("step")), as_str(ev.get("language"))
    if step is None or language is None:
        return None
    row: dict[str, Any] = {"seq": seq, "run_id": run_id, "step": step, "language": language}
    for name in ("loss", "ppl", "char_ppl", "accuracy"):
        row[name] = as_float(ev.get(name))
    row["tokens"] = as_int(ev.get("tokens"))
    row["n_tokens"] = as_int(ev.get("n_tokens"))
    row["time"] = stamp(as_time(ev.get("time")))
    return row


@dataclass(frozen=True)
class AlignKind:
    """An alignment event kind and the table its rows go to (engine.analysis.alignment's results)."""

    table: str
    columns: dict[str, str]
    key: str


_ALIGN_COMMON = {
    "seq": "BIGINT",
    "run_id": "VARCHAR",
    "step": "BIGINT",
    "tokens": "BIGINT",
    "lang_a": "VARCHAR",
    "lang_b": "VARCHAR",
}
ALIGN_KINDS = {
    "align_embedding": AlignKind(
        "align_embeddings",
        _ALIGN_COMMON
        | {
            "matrix": "VARCHAR",
            "similarity": "DOUBLE",
            "control": "DOUBLE",
            "n_ids": "BIGINT",
            "n_anchors": "BIGINT",
            "bins": "JSON",
            "time": "TIMESTAMP",
        },
        "run_id, step, matrix, lang_a, lang_b",
    ),
    "align_hidden": AlignKind(
        "align_hidden",
        _ALIGN_COMMON | {"layer": "BIGINT", "similarity": "DOUBLE", "n_sequences": "BIGINT", "time": "TIMESTAMP"},
        "run_id, step, lang_a, lang_b, layer",
    ),
    "align_gradient": AlignKind(
        "align_gradients",
        _ALIGN_COMMON | {"tensor": "VARCHAR", "similarity": "DOUBLE", "time": "TIMESTAMP"},
        "run_id, step, lang_a, lang_b, tensor",
    ),
}
# Not alignment, but the same shape of rows (one event, one keyed row): tokenisation facts and probes.
ALIGN_KINDS["tokenizer"] = AlignKind(
    "tokenizers",
    {
        "seq": "BIGINT",
        "run_id": "VARCHAR",
        "mode": "VARCHAR",
        "vocab_size": "BIGINT",
        "n_anchors": "BIGINT",
        "languages": "JSON",
        "time": "TIMESTAMP",
    },
    "run_id",
)
ALIGN_KINDS["probe"] = AlignKind(
    "probes",
    {
        "seq": "BIGINT",
        "run_id": "VARCHAR",
        "step": "BIGINT",
        "tokens": "BIGINT",
        "task": "VARCHAR",
        "train_language": "VARCHAR",
        "language": "VARCHAR",
        "accuracy": "DOUBLE",
        "chance": "DOUBLE",
        "n_examples": "BIGINT",
        "train_accuracy": "DOUBLE",
        "time": "TIMESTAMP",
    },
    "run_id, step, task, train_language, language",
)
_COERCE = {
    "BIGINT": as_int,
    "DOUBLE": as_float,
    "VARCHAR": as_str,
    "JSON": lambda v: v,
    "TIMESTAMP": lambda v: stamp(as_time(v)),
}


def _align_row(seq: int, run_id: str, ev: dict[str, Any]) -> dict[str, Any] | None:
    kind = ALIGN_KINDS[ev["kind"]]
    row = {name: _COERCE[typ](ev.get(name)) for name, typ in kind.columns.items()}
    row["seq"], row["run_id"] = seq, run_id
    if any(row[k.strip()] is None for k in kind.key.split(",")):
        return None
    return row


def _annotations(run_dir: Path) -> tuple[list[str] | None, str | None]:
    """The user's tags and note (``annotations.json``, written by xling-tui); in the folder so a rebuild keeps them."""
    data = _read_json_object(run_dir / ANNOTATIONS_FILE) or {}
    return as_str_list(data.get("tags")) or None, as_str(data.get("note")) or None


def _scan_run(
    batch: Batch, run_dir: Path, stored: int, known: dict[str, tuple[Any, ...]], folded: dict[str, RunFold]
) -> bool:
    """Adds one run's news to the batch; True when the run changed at all. Its events
    are folded on top of the state stored last time (``folded``), so the stored state
    is the fold of the whole log however many ingests it took."""
    run_id = run_dir.name
    changed = False
    spec = _read_json_object(run_dir / SPEC_FILE)
    notes = _annotations(run_dir)
    if spec is not None and known.get(run_id) != (spec, str(run_dir), *notes):
        batch.specs.append(_spec_row(run_id, run_dir, spec) | {"tags": notes[0], "note": notes[1]})
        changed = True
    events, offset = read_events(run_dir / EVENTS_FILE, stored, batch.skipped)  # a replaced log is read from its start
    if offset != stored:
        batch.offsets.append({"run_id": run_id, "byte_offset": offset})
    if not events:
        return changed
    fold = folded.get(run_id) or RunFold()
    reported_done = False
    for ev in events:
        seq = batch.events
        batch.events += 1
        fold.apply(ev)
        reported_done |= ev.get("kind") == "status" and RunStatus.parse(ev.get("status")) is RunStatus.DONE
        if ev.get("kind") == "train" and (row := _train_row(seq, run_id, ev)):
            batch.train.append(row)
        elif ev.get("kind") == "eval" and (row := _eval_row(seq, run_id, ev)):
            batch.evals.append(row)
        elif ev.get("kind") in ALIGN_KINDS and (row := _align_row(seq, run_id, ev)):
            batch.align.setdefault(ev["kind"], []).append(row)
    batch.states.append(_fold_row(run_id, fold))
    if reported_done and fold.status is RunStatus.DONE:
        batch.finished.append(run_id)
    return True


def _scan_experiments(batch: Batch, exp_dir: Path, known: dict[str, tuple]) -> list[str]:
    """Adds new or changed experiments to the batch; returns the names present."""
    present: list[str] = []
    if not exp_dir.is_dir():
        return present
    for path in sorted(exp_dir.glob("*.json")):
        data = _read_json_object(path)
        try:
            mtime = path.stat().st_mtime
        except OSError:  # deleted while we looked
            data = None
        if data is None:
            continue
        name = as_str(data.get("name")) or path.stem
        present.append(name)
        row = {
            "name": name,
            "description": as_str(data.get("description")),
            "source": as_str(data.get("source")),
            "config": data.get("config"),
            "updated": stamp(as_time(mtime)),
        }
        row["run_ids"] = as_str_list(data.get("run_ids"))
        if known.get(name) != (row["description"], row["source"], row["config"], row["updated"], row["run_ids"]):
            batch.experiments.append(row)
    return present


def scan(root: Path, con: duckdb.DuckDBPyConnection) -> tuple[Batch, int]:
    """Reads the folder against what the database already holds; returns (batch, runs changed)."""
    offsets = dict(con.execute("SELECT run_id, byte_offset FROM ingest_state").fetchall())
    rows = con.execute(f"SELECT run_id, spec, run_dir, tags, note, {', '.join(_FOLD_COLUMNS)} FROM runs").fetchall()
    known_specs = {r[0]: (json.loads(r[1]) if r[1] is not None else None, *r[2:5]) for r in rows}
    folded = {r[0]: _stored_fold(r[5:]) for r in rows}
    known_exps = {
        n: (d, s, json.loads(c) if c is not None else None, iso(u), ids)
        for n, d, s, c, u, ids in con.execute(
            "SELECT name, description, source, config, updated, run_ids FROM experiments"
        ).fetchall()
    }
    batch = Batch()
    runs_dir = root / "runs"
    run_dirs = (
        sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) if runs_dir.is_dir() else []
    )
    changed = sum(_scan_run(batch, d, offsets.get(d.name, 0), known_specs, folded) for d in run_dirs)
    experiments = _scan_experiments(batch, root / "experiments", known_exps)
    # A database copied somewhere without its folder keeps its contents.
    if root.is_dir():
        batch.gone_runs = sorted((set(known_specs) | set(offsets)) - {d.name for d in run_dirs})
        batch.gone_experiments = sorted(set(known_exps) - set(experiments))
    return batch, changed


# -- loading the batch -------------------------------------------------------------

_TRAIN_COLUMNS = {
    "seq": "BIGINT",
    "run_id": "VARCHAR",
    "step": "BIGINT",
    "tokens": "BIGINT",
    "lr": "DOUBLE",
    "loss": "DOUBLE",
    "lang_loss": "MAP(VARCHAR, DOUBLE)",
    "tokens_per_s": "DOUBLE",
    "time": "TIMESTAMP",
}
_EVAL_COLUMNS = {
    "seq": "BIGINT",
    "run_id": "VARCHAR",
    "step": "BIGINT",
    "tokens": "BIGINT",
    "language": "VARCHAR",
    "loss": "DOUBLE",
    "ppl": "DOUBLE",
    "char_ppl": "DOUBLE",
    "accuracy": "DOUBLE",
    "n_tokens": "BIGINT",
    "time": "TIMESTAMP",
}
_SPEC_COLUMNS = {
    "run_id": "VARCHAR",
    "experiment": "VARCHAR",
    "name": "VARCHAR",
    "kind": "VARCHAR",
    "spec": "JSON",
    "model": "VARCHAR",
    "seed": "BIGINT",
    "languages": "VARCHAR[]",
    "job_id": "VARCHAR",
    "total_steps": "BIGINT",
    "total_tokens": "BIGINT",
    "run_dir": "VARCHAR",
    "tags": "VARCHAR[]",
    "note": "VARCHAR",
}
_STATE_COLUMNS = {
    "run_id": "VARCHAR",
    "status": "VARCHAR",
    "message": "VARCHAR",
    "step": "BIGINT",
    "tokens": "BIGINT",
    "device": "VARCHAR",
    "host": "VARCHAR",
    "pid": "INTEGER",
    "backend": "VARCHAR",
    "job_id": "VARCHAR",
    "job_state": "VARCHAR",
    "total_steps": "BIGINT",
    "total_tokens": "BIGINT",
    "queued": "TIMESTAMP",
    "started": "TIMESTAMP",
    "finished": "TIMESTAMP",
    "last_seen": "TIMESTAMP",
}
_OFFSET_COLUMNS = {"run_id": "VARCHAR", "byte_offset": "BIGINT"}
_EXPERIMENT_COLUMNS = {
    "name": "VARCHAR",
    "description": "VARCHAR",
    "source": "VARCHAR",
    "config": "JSON",
    "updated": "TIMESTAMP",
    "run_ids": "VARCHAR[]",
}


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _load_specs(con: duckdb.DuckDBPyConnection, src: str) -> None:
    """Spec-derived columns; the worker's 'started' event outranks the spec for totals."""
    override = "CASE WHEN runs.started IS NULL THEN EXCLUDED.{c} ELSE COALESCE(runs.{c}, EXCLUDED.{c}) END"
    plain = ("experiment", "name", "kind", "spec", "model", "seed", "languages", "run_dir", "tags", "note")
    sets = [f"{c} = EXCLUDED.{c}" for c in plain]
    sets += [f"{c} = " + override.format(c=c) for c in ("total_steps", "total_tokens")]
    sets.append("job_id = COALESCE(EXCLUDED.job_id, runs.job_id)")  # a spec without one keeps the submission's
    cols = ", ".join(_SPEC_COLUMNS)
    con.execute(
        f"INSERT INTO runs ({cols}) SELECT {cols} FROM {src} ON CONFLICT (run_id) DO UPDATE SET {', '.join(sets)}"
    )


def _load_states(con: duckdb.DuckDBPyConnection, src: str) -> None:
    """Each run's folded state replaces the stored one (it was folded on top of it).

    Totals are the exception: until a worker starts, the spec's (loaded just before, in
    this same transaction) stand.
    """
    cols = list(_STATE_COLUMNS)
    sets = [f"{c} = EXCLUDED.{c}" for c in _FOLD_COLUMNS if c not in ("total_steps", "total_tokens")]
    sets += [f"{c} = COALESCE(EXCLUDED.{c}, runs.{c})" for c in ("total_steps", "total_tokens")]
    con.execute(
        f"INSERT INTO runs ({', '.join(cols)}) SELECT {', '.join(cols)} FROM {src} "
        f"ON CONFLICT (run_id) DO UPDATE SET {', '.join(sets)}"
    )


def _load_metrics(con: duckdb.DuckDBPyConnection, table: str, src: str, columns: dict[str, str], key: str) -> int:
    """Later lines win, also within one batch (a resumed run repeats steps)."""
    cols = [c for c in columns if c != "seq"]
    select = ", ".join(cols)
    return _count(
        con,
        f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) SELECT {select} FROM {src} "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY seq DESC) = 1",
    )


def _prune(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    """Rows of run folders and experiment files that were deleted: the folder is the truth."""
    if batch.gone_runs:
        for table in ("runs", "train_metrics", "evals", "ingest_state", *(k.table for k in ALIGN_KINDS.values())):
            con.execute(f"DELETE FROM {table} WHERE list_contains(?::VARCHAR[], run_id)", [batch.gone_runs])
    if batch.gone_experiments:
        con.execute("DELETE FROM experiments WHERE list_contains(?::VARCHAR[], name)", [batch.gone_experiments])


def apply(con: duckdb.DuckDBPyConnection, batch: Batch, tmp: Path, stats: IngestStats) -> None:
    """All writes of one ingest; the caller wraps them in a transaction."""
    if batch.specs:
        _load_specs(con, ndjson_source(write_ndjson(tmp / "specs.ndjson", batch.specs), _SPEC_COLUMNS))
    if batch.states:
        _load_states(con, ndjson_source(write_ndjson(tmp / "states.ndjson", batch.states), _STATE_COLUMNS))
        stats.finished = list(batch.finished)
    if batch.train:
        src = ndjson_source(write_ndjson(tmp / "train.ndjson", batch.train), _TRAIN_COLUMNS)
        stats.train_rows = _load_metrics(con, "train_metrics", src, _TRAIN_COLUMNS, "run_id, step")
    if batch.evals:
        src = ndjson_source(write_ndjson(tmp / "evals.ndjson", batch.evals), _EVAL_COLUMNS)
        stats.eval_rows = _load_metrics(con, "evals", src, _EVAL_COLUMNS, "run_id, step, language")
    for name, rows in batch.align.items():
        kind = ALIGN_KINDS[name]
        src = ndjson_source(write_ndjson(tmp / f"{name}.ndjson", rows), kind.columns)
        stats.align_rows += _load_metrics(con, kind.table, src, kind.columns, kind.key)
    if batch.experiments:
        src = ndjson_source(write_ndjson(tmp / "experiments.ndjson", batch.experiments), _EXPERIMENT_COLUMNS)
        con.execute(
            "INSERT OR REPLACE INTO experiments (name, description, source, config, updated, run_ids) "
            f"SELECT name, description, source, config, updated, run_ids FROM {src}"
        )
    if batch.offsets:
        src = ndjson_source(write_ndjson(tmp / "offsets.ndjson", batch.offsets), _OFFSET_COLUMNS)
        con.execute(f"INSERT OR REPLACE INTO ingest_state (run_id, byte_offset) SELECT run_id, byte_offset FROM {src}")
    _prune(con, batch)


def ingest_into(con: duckdb.DuckDBPyConnection, root: Path) -> IngestStats:
    """One ingest on a connection holding the write lock; commits or changes nothing."""
    batch, changed = scan(Path(root), con)
    stats = IngestStats(
        runs=changed,
        events=batch.events,
        experiments=len(batch.experiments),
        removed=len(batch.gone_runs),
        skipped=batch.skipped,
    )
    if batch.is_empty():
        return stats
    with tempfile.TemporaryDirectory(prefix="xling-ingest-") as tmp:
        con.begin()
        try:
            apply(con, batch, Path(tmp), stats)
            con.commit()
        except BaseException:
            rollback(con)
            raise
    return stats


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """A failed commit (a full disk) may already have ended the transaction; DuckDB's
    'no transaction is active' must not hide the error that says why."""
    try:
        con.rollback()
    except duckdb.Error:
        pass
