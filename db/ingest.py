"""Bringing the database up to date with the run folder, in one short transaction.

The caller holds DuckDB's write lock, so this module reads the stored offsets, reads
only the complete lines written since, and loads them in bulk: every kind of row is
written to a temporary NDJSON file and inserted with one ``INSERT ... SELECT FROM
read_json(...)`` statement (no per-row INSERTs, no pandas/pyarrow). Offsets are
committed in the same transaction as the rows they produced, so an ingest that dies
half way leaves nothing behind and the next one redoes it.

Per-run state (status, step, ...) is folded in Python from the new events and merged
with the stored row by rules that give the same result whether the log is ingested
in one go or in many pieces (so a rebuild from the folder equals the live database).
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from db.bulk import iso, ndjson_source, stamp, write_ndjson
from engine.runs.events import read_events
from engine.runs.layout import ANNOTATIONS_FILE, EVENTS_FILE, SPEC_FILE

TERMINAL = ("done", "failed", "cancelled")
_DELTA_TIMES = ("finished", "queued", "started", "last_seen")
STATUS_OF_KIND = {"queued": "queued", "started": "running"}
_BIGINT_MAX = 2**63 - 1


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
    changed_experiments: list[str] = field(default_factory=list)  # their names: their runs may be new to them


# -- coercion: a malformed field must become NULL, never poison the bulk insert --


def _float(v: Any) -> float | None:
    """NaN and inf survive (a diverged loss is information); non-numbers do not."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _int(v: Any) -> int | None:
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or abs(v) > _BIGINT_MAX:
        return None
    return v


def _pid(v: Any) -> int | None:
    """The column is INTEGER; an impossible pid must not fail the cast of the whole batch."""
    pid = _int(v)
    return pid if pid is not None and 0 <= pid < 2**31 else None


def _time(v: Any) -> float | None:
    f = _float(v)
    return f if f is not None and math.isfinite(f) and abs(f) < 1e11 else None


def _str(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return None


def _or(new: Any, old: Any) -> Any:
    return old if new is None else new


def _lang_map(v: Any) -> dict[str, float] | None:
    if not isinstance(v, dict):
        return None
    return {str(k): f for k, x in v.items() if (f := _float(x)) is not None}


def _str_list(v: Any) -> list[str] | None:
    if not isinstance(v, list):
        return None
    return [str(x) for x in v]


# -- reading the folder ----------------------------------------------------------


@dataclass
class RunDelta:
    """What a run's new events say about its row in ``runs`` (None: nothing new)."""

    run_id: str
    status: str | None = None
    message: str | None = None
    finished: float | None = None
    queued: float | None = None
    started: float | None = None
    last_seen: float | None = None
    device: str | None = None
    host: str | None = None
    pid: int | None = None
    job_id: str | None = None
    backend: str | None = None
    step: int | None = None
    tokens: int | None = None
    total_steps: int | None = None
    total_tokens: int | None = None

    def fold(self, ev: dict[str, Any]) -> None:
        """Apply one event; called in log order, so 'latest' means last applied."""
        t = _time(ev.get("time"))
        if t is not None:
            self.last_seen = t if self.last_seen is None else max(self.last_seen, t)
        kind = ev.get("kind")
        if kind in STATUS_OF_KIND or kind == "status":
            self._status(ev, kind, t)
        if kind == "queued":
            self.queued = _or(self.queued, t)  # the first one: re-queueing keeps the order
        elif kind == "started":
            self._started(ev, t)
        elif kind == "submitted":
            self.backend = _or(_str(ev.get("backend")), self.backend)
            self.job_id = _or(_str(ev.get("job_id")), self.job_id)
        elif kind == "train":
            self.step = _or(_int(ev.get("step")), self.step)
            self.tokens = _or(_int(ev.get("tokens")), self.tokens)
        elif kind == "heartbeat":
            self.step = _or(_int(ev.get("step")), self.step)
            self.pid = _or(_pid(ev.get("pid")), self.pid)

    def _status(self, ev: dict[str, Any], kind: str, t: float | None) -> None:
        status = STATUS_OF_KIND.get(kind) or _str(ev.get("status"))
        if status is None:
            return
        self.status = status
        self.message = _str(ev.get("message"))
        self.finished = t if status in TERMINAL else None
        if kind == "status":
            self.step = _or(_int(ev.get("step")), self.step)

    def _started(self, ev: dict[str, Any], t: float | None) -> None:
        if self.started is None:
            self.started = t
        for name in ("device", "host", "job_id"):
            if (v := _str(ev.get(name))) is not None:
                setattr(self, name, v)
        self.pid = _or(_pid(ev.get("pid")), self.pid)
        for name in ("total_steps", "total_tokens"):
            if (n := _int(ev.get(name))) is not None:
                setattr(self, name, n)
        resumed = _int(ev.get("resumed_from"))
        self.step = resumed if resumed is not None else 0
        if resumed is None:
            self.tokens = 0  # a fresh start forgets a failed attempt's progress

    def row(self) -> dict[str, Any]:
        row = self.__dict__.copy()
        for name in _DELTA_TIMES:
            row[name] = stamp(row[name])
        return row


@dataclass
class Batch:
    """Everything new in the folder since the stored offsets."""

    specs: list[dict[str, Any]] = field(default_factory=list)
    train: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    deltas: list[dict[str, Any]] = field(default_factory=list)
    align: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kind -> rows
    offsets: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    gone_runs: list[str] = field(default_factory=list)
    gone_experiments: list[str] = field(default_factory=list)
    events: int = 0

    def is_empty(self) -> bool:
        """Lets an idle ingest (a UI polling) skip the transaction and its fsync."""
        parts = (self.specs, self.deltas, self.offsets, self.experiments, self.gone_runs, self.gone_experiments)
        return not any(parts)


def _read_json_object(path: Path) -> dict[str, Any] | None:
    """None while the file is missing or half-written; the next ingest tries again."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _new_events(log: Path, stored: int) -> tuple[list[dict[str, Any]], int]:
    """A log shorter than its stored offset was replaced: read it again from the top."""
    try:
        size = log.stat().st_size
    except OSError:
        return [], stored
    start = 0 if size < stored else stored
    if size == start:
        return [], start
    return read_events(log, start)


def _spec_row(run_id: str, run_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    model = spec.get("model")
    if isinstance(model, dict):
        model = model.get("name")
    return {
        "run_id": run_id,
        "experiment": _str(spec.get("experiment")),
        "name": _str(spec.get("name")),
        "kind": _str(spec.get("kind")),
        "spec": spec,
        "model": _str(model),
        "seed": _int(spec.get("seed")),
        "languages": _str_list(spec.get("languages")),
        "job_id": _str(spec.get("job_id")),
        "total_steps": _int(spec.get("total_steps")),
        "total_tokens": _int(spec.get("total_tokens")),
        "run_dir": str(run_dir),
    }


def _train_row(seq: int, run_id: str, ev: dict[str, Any]) -> dict[str, Any] | None:
    step = _int(ev.get("step"))
    if step is None:
        return None
    return {
        "seq": seq,
        "run_id": run_id,
        "step": step,
        "tokens": _int(ev.get("tokens")),
        "lr": _float(ev.get("lr")),
        "loss": _float(ev.get("loss")),
        "lang_loss": _lang_map(ev.get("lang_loss")),
        "tokens_per_s": _float(ev.get("tokens_per_s")),
        "time": stamp(_time(ev.get("time"))),
    }


def _eval_row(seq: int, run_id: str, ev: dict[str, Any]) -> dict[str, Any] | None:
    step, language = _int(ev.get("step")), _str(ev.get("language"))
    if step is None or language is None:
        return None
    row: dict[str, Any] = {"seq": seq, "run_id": run_id, "step": step, "language": language}
    for name in ("loss", "ppl", "char_ppl", "accuracy"):
        row[name] = _float(ev.get(name))
    row["tokens"] = _int(ev.get("tokens"))
    row["n_tokens"] = _int(ev.get("n_tokens"))
    row["time"] = stamp(_time(ev.get("time")))
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
    "BIGINT": _int,
    "DOUBLE": _float,
    "VARCHAR": _str,
    "JSON": lambda v: v,
    "TIMESTAMP": lambda v: stamp(_time(v)),
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
    return _str_list(data.get("tags")) or None, _str(data.get("note")) or None


def _scan_run(batch: Batch, run_dir: Path, stored: int, known: dict[str, tuple[Any, ...]]) -> bool:
    """Adds one run's news to the batch; True when the run changed at all."""
    run_id = run_dir.name
    changed = False
    spec = _read_json_object(run_dir / SPEC_FILE)
    notes = _annotations(run_dir)
    if spec is not None and known.get(run_id) != (spec, str(run_dir), *notes):
        batch.specs.append(_spec_row(run_id, run_dir, spec) | {"tags": notes[0], "note": notes[1]})
        changed = True
    events, offset = _new_events(run_dir / EVENTS_FILE, stored)
    if offset != stored:
        batch.offsets.append({"run_id": run_id, "byte_offset": offset})
    if not events:
        return changed
    delta = RunDelta(run_id)
    for ev in events:
        seq = batch.events
        batch.events += 1
        delta.fold(ev)
        if ev.get("kind") == "train" and (row := _train_row(seq, run_id, ev)):
            batch.train.append(row)
        elif ev.get("kind") == "eval" and (row := _eval_row(seq, run_id, ev)):
            batch.evals.append(row)
        elif ev.get("kind") in ALIGN_KINDS and (row := _align_row(seq, run_id, ev)):
            batch.align.setdefault(ev["kind"], []).append(row)
    batch.deltas.append(delta.row())
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
        name = _str(data.get("name")) or path.stem
        present.append(name)
        row = {
            "name": name,
            "description": _str(data.get("description")),
            "source": _str(data.get("source")),
            "config": data.get("config"),
            "updated": stamp(_time(mtime)),
        }
        row["run_ids"] = _str_list(data.get("run_ids"))
        row["members"] = _members(data.get("runs"))
        if known.get(name) != (row["description"], row["source"], row["config"], row["updated"], row["run_ids"]):
            batch.experiments.append(row)
    return present


def _members(raw: Any) -> list[dict[str, Any]] | None:
    """An experiment file's runs with their names in it; None when absent or not a list of objects."""
    if not isinstance(raw, list) or not all(isinstance(m, dict) and isinstance(m.get("run_id"), str) for m in raw):
        return None
    return [
        {
            "run_id": m["run_id"],
            "name": _str(m.get("name")),
            "kind": _str(m.get("kind")),
            "point": json.dumps(m["point"]) if isinstance(m.get("point"), dict) else None,
        }
        for m in raw
    ]


def scan(root: Path, con: duckdb.DuckDBPyConnection) -> tuple[Batch, int]:
    """Reads the folder against what the database already holds; returns (batch, runs changed)."""
    offsets = dict(con.execute("SELECT run_id, byte_offset FROM ingest_state").fetchall())
    known_specs = {
        r: (json.loads(s) if s is not None else None, d, t, n)
        for r, s, d, t, n in con.execute("SELECT run_id, spec, run_dir, tags, note FROM runs").fetchall()
    }
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
    changed = sum(_scan_run(batch, d, offsets.get(d.name, 0), known_specs) for d in run_dirs)
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
_DELTA_COLUMNS = {
    "run_id": "VARCHAR",
    "status": "VARCHAR",
    "message": "VARCHAR",
    "finished": "TIMESTAMP",
    "queued": "TIMESTAMP",
    "started": "TIMESTAMP",
    "last_seen": "TIMESTAMP",
    "device": "VARCHAR",
    "host": "VARCHAR",
    "pid": "INTEGER",
    "job_id": "VARCHAR",
    "step": "BIGINT",
    "tokens": "BIGINT",
    "total_steps": "BIGINT",
    "total_tokens": "BIGINT",
    "backend": "VARCHAR",
}
_OFFSET_COLUMNS = {"run_id": "VARCHAR", "byte_offset": "BIGINT"}
_EXPERIMENT_COLUMNS = {
    "name": "VARCHAR",
    "description": "VARCHAR",
    "source": "VARCHAR",
    "config": "JSON",
    "updated": "TIMESTAMP",
    "run_ids": "VARCHAR[]",
    "members": "STRUCT(run_id VARCHAR, name VARCHAR, kind VARCHAR, point JSON)[]",
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


def _load_deltas(con: duckdb.DuckDBPyConnection, src: str) -> None:
    """Merges the new events' view of each run with the stored one (see RunDelta)."""
    cols = list(_DELTA_COLUMNS)
    select = ", ".join(cols)
    latest = ("device", "host", "pid", "job_id", "backend", "step", "tokens", "total_steps", "total_tokens")
    sets = [
        "status = COALESCE(EXCLUDED.status, runs.status)",
        "message = CASE WHEN EXCLUDED.status IS NULL THEN runs.message ELSE EXCLUDED.message END",
        "finished = CASE WHEN EXCLUDED.status IS NULL THEN runs.finished ELSE EXCLUDED.finished END",
        "queued = COALESCE(runs.queued, EXCLUDED.queued)",
        "started = COALESCE(runs.started, EXCLUDED.started)",
        "last_seen = GREATEST(runs.last_seen, EXCLUDED.last_seen)",
    ] + [f"{c} = COALESCE(EXCLUDED.{c}, runs.{c})" for c in latest]
    con.execute(
        f"INSERT INTO runs ({', '.join(cols)}) SELECT {select} FROM {src} "
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
    if batch.deltas:
        _load_deltas(con, ndjson_source(write_ndjson(tmp / "deltas.ndjson", batch.deltas), _DELTA_COLUMNS))
        stats.finished = [d["run_id"] for d in batch.deltas if d["status"] == "done"]
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
            "INSERT OR REPLACE INTO experiments (name, description, source, config, updated, run_ids, members) "
            f"SELECT name, description, source, config, updated, run_ids, members FROM {src}"
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
        changed_experiments=[e["name"] for e in batch.experiments],
    )
    if batch.is_empty():
        return stats
    with tempfile.TemporaryDirectory(prefix="xling-ingest-") as tmp:
        con.begin()
        try:
            apply(con, batch, Path(tmp), stats)
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return stats
