"""The named queries the TUI, the CLI and the analysis share, so their SQL lives here only.

Each takes a ``Store`` and reads through ``Store.query`` (read-only, lock-tolerant).
They read what the database holds; call ``store.try_ingest()`` first for fresh data.
"""

from __future__ import annotations

import threading
from typing import Iterable

import duckdb

from db.store import QueryError, QueryResult, Store, StoreError

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
    r.started,
    r.finished,
    r.message
FROM runs r
LEFT JOIN best_text b USING (run_id)
WHERE $experiment IS NULL OR r.experiment = $experiment
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
LEFT JOIN runs r ON r.experiment = e.name
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
FROM runs r
JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
LEFT JOIN teff t ON t.run_id = r.run_id AND t.language = e.language AND t.step = e.step
WHERE r.experiment = $experiment AND r.status = 'done' AND {current}
ORDER BY r.kind DESC, r.total_tokens DESC, r.name, r.seed, e.language
"""

_REPORT_HIDDEN = """
SELECT r.name, r.seed, h.lang_a, h.lang_b, h.layer, h.similarity
FROM align_hidden h JOIN runs r USING (run_id)
WHERE r.experiment = $experiment AND h.step = r.total_steps AND {current}
ORDER BY r.name, r.seed, h.lang_b, h.layer
"""

_REPORT_EMBEDDINGS = """
SELECT r.name, r.seed, a.matrix, a.lang_a, a.lang_b, a.similarity, a.control, a.bins
FROM align_embeddings a JOIN runs r USING (run_id)
WHERE r.experiment = $experiment AND a.step = r.total_steps AND {current}
ORDER BY r.name, r.seed, a.lang_b, a.matrix
"""

# Components: a tensor name without its block index, e.g. 'attn.qkv.weight'.
_REPORT_GRADIENTS = """
SELECT r.name, r.seed, g.lang_a, g.lang_b,
       regexp_replace(g.tensor, '^blocks\\.[0-9]+\\.', '') AS component,
       avg(g.similarity) AS similarity
FROM align_gradients g JOIN runs r USING (run_id)
WHERE r.experiment = $experiment AND g.step = r.total_steps AND {current}
GROUP BY ALL
ORDER BY r.name, r.seed, g.lang_b, component
"""

_REPORT_LAWS = """
SELECT model, language, form, params, n_points, token_min, token_max, residuals, warnings, error, law
FROM scaling_fits WHERE experiment = $experiment ORDER BY model, language
"""


from db.analysis import CURRENT as _CURRENT  # noqa: E402

_REPORT_RUNS = _REPORT_RUNS.format(current=_CURRENT)
_REPORT_HIDDEN = _REPORT_HIDDEN.format(current=_CURRENT)
_REPORT_EMBEDDINGS = _REPORT_EMBEDDINGS.format(current=_CURRENT)
_REPORT_GRADIENTS = _REPORT_GRADIENTS.format(current=_CURRENT)


def report_runs(store: Store, experiment: str) -> QueryResult:
    """Final PPL and TEff per finished run and language (one row per pair)."""
    return store.query(_REPORT_RUNS, {"experiment": experiment})


def report_hidden(store: Store, experiment: str) -> QueryResult:
    return store.query(_REPORT_HIDDEN, {"experiment": experiment})


def report_embeddings(store: Store, experiment: str) -> QueryResult:
    return store.query(_REPORT_EMBEDDINGS, {"experiment": experiment})


def report_gradients(store: Store, experiment: str) -> QueryResult:
    return store.query(_REPORT_GRADIENTS, {"experiment": experiment})


def report_laws(store: Store, experiment: str) -> QueryResult:
    return store.query(_REPORT_LAWS, {"experiment": experiment})


# -- real languages: tokenisation and the downstream probe ---------------------------

_REPORT_PROBES = """
SELECT r.name, r.seed, p.task, p.train_language, p.language, p.accuracy, p.chance, p.n_examples
FROM probes p JOIN runs r USING (run_id)
WHERE r.experiment = $experiment AND p.step = r.total_steps AND {current}
ORDER BY r.kind DESC, r.name, r.seed, p.task, p.train_language, p.language
""".format(current=_CURRENT)

_REPORT_TOKENIZERS = """
SELECT t.mode, t.vocab_size, t.n_anchors, t.languages::VARCHAR AS languages, count(*) AS runs
FROM tokenizers t JOIN runs r USING (run_id)
WHERE r.experiment = $experiment AND {current}
GROUP BY ALL ORDER BY runs DESC
""".format(current=_CURRENT)


def report_probes(store: Store, experiment: str) -> QueryResult:
    """Final probe accuracies per run, seed, task and evaluation language."""
    return store.query(_REPORT_PROBES, {"experiment": experiment})


def report_tokenizers(store: Store, experiment: str) -> QueryResult:
    """The distinct tokenisations of an experiment's current runs (usually one), with anchors."""
    return store.query(_REPORT_TOKENIZERS, {"experiment": experiment})


# -- the TUI dashboard --------------------------------------------------------------

# Cheap enough to run every poll: tells the dashboard which runs changed since its last look.
_RUN_FINGERPRINTS = """
SELECT run_id, status, step, last_seen, tags, note FROM runs ORDER BY run_id
"""

_DASHBOARD_RUNS = """
WITH last_train AS (
    SELECT run_id, arg_max(tokens_per_s, step) AS tokens_per_s, arg_max(loss, step) AS loss
    FROM train_metrics
    WHERE list_contains(CAST($run_ids AS VARCHAR[]), run_id)
    GROUP BY run_id
), best AS (
    SELECT run_id, language, min(ppl) AS ppl
    FROM evals
    WHERE list_contains(CAST($run_ids AS VARCHAR[]), run_id)
    GROUP BY run_id, language
), best_lists AS (
    SELECT run_id, list(language ORDER BY language) AS languages, list(ppl ORDER BY language) AS ppls
    FROM best GROUP BY run_id
)
SELECT r.run_id, r.experiment, r.name, r.kind, coalesce(r.status, 'queued') AS status,
       r.step, r.total_steps, r.tokens, r.total_tokens, t.tokens_per_s, t.loss,
       r.device, r.host, r.pid, b.languages AS best_languages, b.ppls AS best_ppls,
       r.tags, r.note, r.message, epoch(r.started) AS started, epoch(r.last_seen) AS last_seen
FROM runs r
LEFT JOIN last_train t USING (run_id)
LEFT JOIN best_lists b USING (run_id)
WHERE list_contains(CAST($run_ids AS VARCHAR[]), r.run_id)
ORDER BY r.run_id
"""

# The loss curve of each run averaged into $bins equal step ranges (of the run's total
# steps, so a run 60% through fills 60% of its bins): a sparkline's worth of points.
_LOSS_BINS = """
SELECT m.run_id,
       least(CAST(floor(m.step * $bins / greatest(r.total_steps, 1)) AS BIGINT), $bins - 1) AS bin,
       avg(m.loss) AS loss
FROM train_metrics m JOIN runs r USING (run_id)
WHERE list_contains(CAST($run_ids AS VARCHAR[]), m.run_id) AND m.loss IS NOT NULL AND isfinite(m.loss)
GROUP BY ALL
ORDER BY m.run_id, bin
"""


def run_fingerprints(store: Store) -> QueryResult:
    """(run_id, status, step, last_seen, tags, note) per run: what changes when a run moves."""
    return store.query(_RUN_FINGERPRINTS)


def dashboard_runs(store: Store, run_ids: Iterable[str]) -> QueryResult:
    """One row per run with its latest throughput and loss and its best PPL per language."""
    return store.query(_DASHBOARD_RUNS, {"run_ids": list(run_ids)})


def loss_bins(store: Store, run_ids: Iterable[str], bins: int) -> dict[str, list[float | None]]:
    """Each run's training loss as ``bins`` step-range means (None where no step fell)."""
    result = store.query(_LOSS_BINS, {"run_ids": list(run_ids), "bins": int(bins)})
    out: dict[str, list[float | None]] = {}
    for run_id, b, loss in result.rows:
        out.setdefault(run_id, [None] * bins)[int(b)] = loss
    return out


# -- ad-hoc SQL that can be cancelled -------------------------------------------------


class InterruptibleQuery:
    """A user's read-only query that another thread may cancel (the TUI's SQL screen).

    ``run`` executes on a worker thread; ``cancel`` may be called from any thread and
    interrupts DuckDB mid-query. The connection is read-only and has no access to
    other files (``enable_external_access = false``), so the query can neither change
    the results nor write or attach anything else.
    """

    def __init__(self, store: Store, sql: str, max_rows: int, wait: float = 10.0) -> None:
        self.store, self.sql, self.max_rows, self.wait = store, sql, max_rows, wait
        self._con = None
        self._lock = threading.Lock()
        self.cancelled = False

    def run(self) -> QueryResult:
        """Raises QueryCancelled when cancelled, QueryError for DuckDB's complaints."""
        if not self.store.db_path.exists():
            raise StoreError(f"{self.store.db_path} does not exist yet: no results to query")
        with self.store.connect(read_only=True, wait=self.wait) as con:
            with self._lock:
                if self.cancelled:
                    raise QueryCancelled("cancelled")
                self._con = con
            try:
                con.execute("SET enable_external_access = false")
                cur = con.execute(self.sql)
                if cur.description is None:
                    return QueryResult([], [])
                columns = [d[0] for d in cur.description]
                rows = cur.fetchmany(self.max_rows + 1)
            except duckdb.Error as e:
                if self.cancelled:
                    raise QueryCancelled("cancelled") from None
                raise QueryError(str(e)) from None
            finally:
                with self._lock:
                    self._con = None
        return QueryResult(columns, rows[: self.max_rows], truncated=len(rows) > self.max_rows)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._con is not None:
                self._con.interrupt()


class QueryCancelled(StoreError):
    """The user cancelled the query."""
