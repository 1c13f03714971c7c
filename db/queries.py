"""The named queries the TUI, the CLI and the analysis share, so their SQL lives here only.

Each takes a ``Store`` and reads through ``Store.query`` (read-only, lock-tolerant).
They read what the database holds; call ``store.try_ingest()`` first for fresh data.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from db.store import QueryError, QueryResult, SchemaOutdated, Store

# A run with a spec but no status event yet is being queued by its launcher.
_RUN_STATUS = """
WITH best AS (
    SELECT run_id, language, min(ppl) AS ppl
    FROM evals
    GROUP BY run_id, language
), best_text AS (
    SELECT run_id, string_agg(language || ' ' || printf('%.1f', ppl), ' · ' ORDER BY language) AS best_ppl
    FROM best
    GROUP BY run_id
)
SELECT
    r.run_id,
    r.experiment,
    r.name,
    coalesce(r.status, 'queued') AS status,
    r.step,
    r.total_steps,
    CASE
        WHEN r.status = 'done' THEN 1.0
        WHEN r.total_steps > 0 THEN least(greatest(coalesce(r.step, 0) / r.total_steps, 0.0), 1.0)
    END AS progress,
    r.tokens,
    r.device,
    b.best_ppl,
    r.host,
    r.pid,
    r.backend,
    r.job_id,
    r.job_state,
    r.started,
    r.finished,
    r.message
FROM runs r
LEFT JOIN best_text b USING (run_id)
WHERE $experiment IS NULL OR r.run_id IN (SELECT m.run_id FROM member_runs m WHERE m.experiment = $experiment)
ORDER BY r.experiment NULLS LAST, r.queued NULLS LAST, r.run_id
"""

_FINISHED = "SELECT run_id FROM runs WHERE status = 'done'"

_LATEST_EVALS = """
SELECT run_id, language, step, tokens, loss, ppl, char_ppl, accuracy, n_tokens, time
FROM evals
WHERE CAST($run_ids AS VARCHAR[]) IS NULL OR list_contains(CAST($run_ids AS VARCHAR[]), run_id)
QUALIFY row_number() OVER (PARTITION BY run_id, language ORDER BY step DESC) = 1
ORDER BY run_id, language
"""

_TRAIN_CURVE = """
SELECT step, tokens, loss, lr, lang_loss, tokens_per_s, time
FROM train_metrics
WHERE run_id = $run_id
ORDER BY step
"""

_EVAL_CURVE = """
SELECT language, step, tokens, loss, ppl, char_ppl, accuracy, n_tokens, time
FROM evals
WHERE run_id = $run_id
ORDER BY language, step
"""

_EXPERIMENTS = """
SELECT
    e.name,
    e.description,
    e.source,
    e.updated,
    count(r.run_id) AS runs,
    count(r.run_id) FILTER (WHERE r.status = 'done') AS done,
    count(r.run_id) FILTER (WHERE r.status = 'running') AS running,
    count(r.run_id) FILTER (WHERE r.status = 'failed') AS failed
FROM experiments e
LEFT JOIN member_runs r ON r.experiment = e.name
GROUP BY ALL
ORDER BY e.name
"""


def run_status(store: Store, experiment: str | None = None) -> QueryResult:
    """One row per run for the status table; best_ppl reads like 'EN1 112.3 · EN2 240.1'."""
    return store.query(_RUN_STATUS, {"experiment": experiment})


def finished_run_ids(store: Store) -> set[str]:
    """Runs a launcher must not start again."""
    return {row[0] for row in store.query(_FINISHED).rows}


def latest_evals(store: Store, run_ids: Iterable[str] | None = None) -> QueryResult:
    """The newest evaluation per (run, language); all runs when ``run_ids`` is None."""
    ids = None if run_ids is None else list(run_ids)
    return store.query(_LATEST_EVALS, {"run_ids": ids})


def train_curve(store: Store, run_id: str) -> QueryResult:
    """A run's training metrics by step, for plotting."""
    return store.query(_TRAIN_CURVE, {"run_id": run_id})


def eval_curve(store: Store, run_id: str) -> QueryResult:
    """A run's evaluations by language and step, for plotting."""
    return store.query(_EVAL_CURVE, {"run_id": run_id})


def experiments(store: Store) -> QueryResult:
    """Known experiments with counts of their runs by status."""
    return store.query(_EXPERIMENTS)


# -- the report (paper-style tables) ------------------------------------------------

_REPORT_RUNS = """
SELECT r.run_id, r.name, r.kind, r.seed, r.total_tokens, r.spec, r.status,
       e.language, e.ppl, e.char_ppl, e.accuracy,
       t.tokens_seen, t.teff, t.teff_status, t.teff_mark, t.mlte, t.mlte_status
FROM member_runs r
JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
LEFT JOIN teff t ON t.run_id = r.run_id AND t.language = e.language AND t.step = e.step
WHERE r.experiment = $experiment AND r.status = 'done'
ORDER BY r.kind DESC, r.total_tokens DESC, r.name, r.seed, e.language
"""

_REPORT_EMBEDDINGS = """
SELECT r.name, r.seed, a.matrix, a.lang_a, a.lang_b, a.similarity, a.control, a.bins
FROM align_embeddings a JOIN member_runs r USING (run_id)
WHERE r.experiment = $experiment AND a.step = r.total_steps
ORDER BY r.name, r.seed, a.lang_b, a.matrix
"""

_REPORT_LAWS = """
SELECT model, language, form, params, n_points, token_min, token_max, residuals, warnings, error, law
FROM scaling_fits WHERE experiment = $experiment ORDER BY model, language
"""


def report_runs(store: Store, experiment: str) -> QueryResult:
    """Final PPL and TEff per finished run and language (one row per pair)."""
    return store.query(_REPORT_RUNS, {"experiment": experiment})


def report_embeddings(store: Store, experiment: str) -> QueryResult:
    return store.query(_REPORT_EMBEDDINGS, {"experiment": experiment})


def report_laws(store: Store, experiment: str) -> QueryResult:
    return store.query(_REPORT_LAWS, {"experiment": experiment})


# -- real languages: tokenisation ------------------------------------------------

_REPORT_TOKENIZERS = """
SELECT t.mode, t.vocab_size, t.n_anchors, t.languages::VARCHAR AS languages, count(*) AS runs
FROM tokenizers t JOIN member_runs r USING (run_id)
WHERE r.experiment = $experiment
GROUP BY ALL ORDER BY runs DESC
"""


def report_tokenizers(store: Store, experiment: str) -> QueryResult:
    """The distinct tokenisations of an experiment's current runs (usually one), with anchors."""
    return store.query(_REPORT_TOKENIZERS, {"experiment": experiment})


# -- the TUI dashboard --------------------------------------------------------------

# Cheap enough to run every poll: tells the dashboard which runs changed since its last look.
# A run belongs to every experiment that asks for it (member_runs): the dashboard lists it
# under each, and a new experiment sharing it changes its row.
_MEMBERSHIP = """
SELECT run_id, list_sort(list_distinct(list(experiment))) AS experiments FROM member_runs GROUP BY run_id
"""

_RUN_FINGERPRINTS = f"""
SELECT r.run_id, r.status, r.step, r.last_seen, r.tags, r.note, r.total_steps, m.experiments
FROM runs r LEFT JOIN ({_MEMBERSHIP}) m USING (run_id) ORDER BY r.run_id
"""

_DASHBOARD_RUNS = f"""
WITH best AS (
    SELECT run_id, language, min(ppl) AS ppl
    FROM evals
    WHERE list_contains(CAST($run_ids AS VARCHAR[]), run_id)
    GROUP BY run_id, language
), best_lists AS (
    SELECT run_id, list(language ORDER BY language) AS languages, list(ppl ORDER BY language) AS ppls
    FROM best GROUP BY run_id
)
SELECT r.run_id, r.experiment, r.name, r.kind, coalesce(r.status, 'queued') AS status,
       r.step, r.total_steps, r.tokens, r.total_tokens,
       r.device, r.host, r.pid, r.backend, r.job_id, r.job_state, b.languages AS best_languages,
       b.ppls AS best_ppls,
       r.tags, r.note, r.message, epoch(r.started) AS started, epoch(r.last_seen) AS last_seen,
       m.experiments
FROM runs r
LEFT JOIN best_lists b USING (run_id)
LEFT JOIN ({_MEMBERSHIP}) m USING (run_id)
WHERE list_contains(CAST($run_ids AS VARCHAR[]), r.run_id)
ORDER BY r.run_id
"""

# Each run's training loss averaged into $bins equal step ranges of its total steps (a
# run 60% through fills 60% of its bins), read only from the run's $from_steps on: the
# dashboard keeps the earlier bins, so a refresh scans the recent points only. The
# latest point's throughput and loss come from the same scan.
_TRAIN_WINDOW = """
WITH want AS (
    SELECT unnest(CAST($run_ids AS VARCHAR[])) AS run_id, unnest(CAST($from_steps AS BIGINT[])) AS from_step
)
SELECT m.run_id,
       least(CAST(floor(m.step * $bins / greatest(r.total_steps, 1)) AS BIGINT), $bins - 1) AS bin,
       avg(m.loss) FILTER (WHERE isfinite(m.loss)) AS loss,
       max(m.step) AS last_step,
       arg_max(m.tokens_per_s, m.step) AS tokens_per_s,
       arg_max(m.loss, m.step) AS last_loss
FROM train_metrics m
JOIN want w ON m.run_id = w.run_id AND m.step >= w.from_step
JOIN runs r ON r.run_id = m.run_id
GROUP BY ALL
ORDER BY m.run_id, bin
"""


@dataclass
class TrainBin:
    loss: float | None
    last_step: int
    tokens_per_s: float | None
    last_loss: float | None


@dataclass
class DashboardDelta:
    """What changed since the caller's last look (see ``dashboard_delta``)."""

    fingerprints: dict[str, tuple]  # every run: (status, step, last_seen, tags, note, total_steps, experiments)
    runs: list[dict]  # the changed runs' rows
    bins: dict[str, dict[int, TrainBin]]  # changed run -> bin -> its points from from_steps on
    from_steps: dict[str, int]  # where each changed run's window began (0: read whole)


def loss_bin(step: int, total_steps: int | None, bins: int) -> int:
    """The bin ``_TRAIN_WINDOW`` puts a step in."""
    return min(step * bins // max(total_steps or 1, 1), bins - 1)


def bin_start(b: int, total_steps: int | None, bins: int) -> int:
    """The first step of bin ``b`` (inverse of ``loss_bin``)."""
    return -(-b * max(total_steps or 1, 1) // bins)


def dashboard_delta(
    store: Store, known: dict[str, tuple], from_steps: dict[str, int], bins: int, wait: float = 30.0
) -> DashboardDelta:
    """Fingerprints of every run, and rows and loss bins of those whose fingerprint is not
    in ``known``, through one read-only connection (opening one costs more than these
    queries on an idle dashboard). A run missing from ``from_steps`` is read from step 0."""
    if not store.db_path.exists():
        store.ingest(wait=wait)
    try:
        return _delta(store, known, from_steps, bins, wait)
    except SchemaOutdated:
        store.ingest(wait=wait)
        return _delta(store, known, from_steps, bins, wait)


def _delta(store: Store, known: dict[str, tuple], from_steps: dict[str, int], bins: int, wait: float) -> DashboardDelta:
    with store.connect(read_only=True, wait=wait) as con:
        try:
            fingerprints = {
                row[0]: tuple(tuple(v) if isinstance(v, list) else v for v in row[1:])
                for row in con.execute(_RUN_FINGERPRINTS).fetchall()
            }
            changed = [rid for rid, fp in fingerprints.items() if known.get(rid) != fp]
            if not changed:
                return DashboardDelta(fingerprints, [], {}, {})
            starts = {rid: _window_start(known.get(rid), fingerprints[rid], from_steps.get(rid, 0)) for rid in changed}
            cur = con.execute(_DASHBOARD_RUNS, {"run_ids": changed})
            columns = [d[0] for d in cur.description]
            runs = [dict(zip(columns, row)) for row in cur.fetchall()]
            window = con.execute(
                _TRAIN_WINDOW, {"run_ids": changed, "bins": int(bins), "from_steps": [starts[r] for r in changed]}
            )
            out: dict[str, dict[int, TrainBin]] = {}
            for run_id, b, loss, last_step, tps, last_loss in window.fetchall():
                out.setdefault(run_id, {})[int(b)] = TrainBin(loss, last_step, tps, last_loss)
        except duckdb.Error as e:
            raise QueryError(str(e)) from None
    return DashboardDelta(fingerprints, runs, out, starts)


def _window_start(old: tuple | None, new: tuple, asked: int) -> int:
    """Step 0 when the run may have rewritten earlier steps: a new status (a resume
    re-logs steps after its checkpoint), a step going backwards, a new total. A resume
    that has already passed its old step between two polls goes unseen until the run's
    status next changes; only its sparkline's middle bins can be stale meanwhile."""
    if old is None or old[0] != new[0] or (new[1] or 0) < (old[1] or 0) or old[5] != new[5]:
        return 0
    return int(asked)


# -- planning ------------------------------------------------------------------------

_RUN_DURATIONS = """
SELECT run_id, epoch(finished) - epoch(started) AS seconds
FROM runs WHERE status = 'done' AND started IS NOT NULL AND finished >= started
"""


def run_durations(store: Store) -> dict[str, float]:
    """Wall seconds from first start to finish of every finished run (what `xling plan` counts as measured)."""
    return {run_id: float(seconds) for run_id, seconds in store.query(_RUN_DURATIONS).rows}


# -- the SQL screen's schema browser and completion -------------------------------------

# Tables and views of the results (xling's own bookkeeping tables included: they are
# documented too), with their columns in order and the COMMENT ON text schema.sql gives them.
_CATALOG = """
WITH rel AS (
    SELECT table_name AS name, 'table' AS kind, comment FROM duckdb_tables()
    WHERE schema_name = 'main' AND database_name = current_database() AND NOT internal
    UNION ALL
    SELECT view_name, 'view', comment FROM duckdb_views()
    WHERE schema_name = 'main' AND database_name = current_database() AND NOT internal
)
SELECT rel.name, rel.kind, rel.comment,
       list((c.column_name, c.data_type, c.comment) ORDER BY c.column_index) AS columns
FROM rel JOIN duckdb_columns() c
  ON c.table_name = rel.name AND c.schema_name = 'main' AND c.database_name = current_database()
GROUP BY ALL
ORDER BY rel.kind, rel.name
"""


def schema_catalog(store: Store) -> list[tuple[str, str, str | None, list[tuple[str, str, str | None]]]]:
    """(name, 'table' | 'view', comment, [(column, type, doc)]) of every table and view; a
    column's doc is its COMMENT, or else its ``--`` comment in schema.sql."""
    docs = column_docs()
    out = []
    for name, kind, comment, cols in store.query(_CATALOG).rows:
        columns = []
        for col in cols:
            column, dtype, doc = col.values() if isinstance(col, dict) else col
            columns.append((column, dtype, doc or docs.get((name, column))))
        out.append((name, kind, comment, columns))
    return out


_COLUMN_LINE = re.compile(r"^\s+([a-z_][a-z0-9_]*)\s+[A-Z][^-]*?(?:--\s*(.*))?$")
_TABLE_LINE = re.compile(r"^CREATE TABLE ([a-z_][a-z0-9_]*)")


@functools.cache
def column_docs() -> dict[tuple[str, str], str]:
    """(table, column) -> the ``--`` comment schema.sql writes beside the column, with the
    lines that continue it: the one place the columns are documented."""
    docs: dict[tuple[str, str], str] = {}
    table, last = None, None
    for line in Path(__file__).with_name("schema.sql").read_text(encoding="utf-8").splitlines():
        if m := _TABLE_LINE.match(line):
            table, last = m.group(1), None
        elif line.startswith(")"):
            table, last = None, None
        elif table and (m := _COLUMN_LINE.match(line)) and not line.strip().upper().startswith("PRIMARY KEY"):
            last = (table, m.group(1))
            if m.group(2):
                docs[last] = m.group(2).strip()
        elif table and last and line.strip().startswith("--") and last in docs:
            docs[last] += " " + line.strip().lstrip("-").strip()
    return docs
