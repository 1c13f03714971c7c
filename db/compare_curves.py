"""The compare view's curves: each run's PPL per language against three x axes.

A curve carries its steps, the total training tokens at each step and the exact tokens
the run had seen *in that language* by then (the schedule's own per-sequence labels,
``db.analysis.tokens_seen``: what TEff divides by), so the view switches axes without
reading again. Held-out PPL comes from the evaluations (few points, never cut);
training PPL (exp of the per-language training loss) is cut in SQL to at most
``MAX_POINTS`` rows per run, the last always kept. Runs in one query, not one per run.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field

import numpy as np

from db.analysis import tokens_seen
from db.store import Store

MAX_POINTS = 400  # training points per run: more than a terminal plot has columns
METRICS = ("eval", "train")  # held-out PPL, training PPL

_RUNS = """
SELECT run_id, experiment, name, kind, seed, coalesce(status, 'queued') AS status, spec
FROM runs WHERE list_contains(CAST($run_ids AS VARCHAR[]), run_id)
"""

_EVALS = """
SELECT run_id, language, step, ppl FROM evals
WHERE list_contains(CAST($run_ids AS VARCHAR[]), run_id) AND ppl IS NOT NULL
ORDER BY run_id, language, step
"""

# Every k-th row of each run so that at most $n come back per run, always its last one.
_TRAIN = """
WITH t AS (
    SELECT run_id, step, lang_loss,
           row_number() OVER (PARTITION BY run_id ORDER BY step) - 1 AS i,
           count(*) OVER (PARTITION BY run_id) AS n
    FROM train_metrics WHERE list_contains(CAST($run_ids AS VARCHAR[]), run_id)
)
SELECT run_id, step, lang_loss FROM t
WHERE i % greatest(1, ceil(n / $n)::BIGINT) = 0 OR i = n - 1
ORDER BY run_id, step
"""


@dataclass
class RunCurves:
    """One run: who it is, and its PPL curves by metric and language."""

    run_id: str
    experiment: str | None
    name: str
    kind: str | None
    seed: int | None
    status: str
    languages: list[str]
    shares: dict[str, str]  # language -> its schedule, as the report writes it ('90%↘10%')
    curves: dict[tuple[str, str], Curve] = field(default_factory=dict)  # (metric, language) -> curve


@dataclass
class Curve:
    step: np.ndarray
    tokens: np.ndarray  # total training tokens at each step
    lang_tokens: np.ndarray  # tokens seen in the curve's language by each step (exact)
    ppl: np.ndarray

    def x(self, axis: str) -> np.ndarray:
        return {"step": self.step, "tokens": self.tokens, "lang_tokens": self.lang_tokens}[axis]


def compare_curves(store: Store, run_ids: list[str], max_points: int = MAX_POINTS) -> dict[str, RunCurves]:
    """run_id -> its curves, for the runs of ``run_ids`` the database knows."""
    params = {"run_ids": list(run_ids)}
    runs: dict[str, RunCurves] = {}
    specs: dict[str, dict] = {}
    for run_id, experiment, name, kind, seed, status, spec_json in store.query(_RUNS, params).rows:
        spec = json.loads(spec_json) if isinstance(spec_json, str) else (spec_json or {})
        specs[run_id] = spec
        runs[run_id] = RunCurves(
            run_id, experiment, name or run_id, kind, seed, status, list(spec.get("languages") or []), _shares(spec)
        )
    points: dict[tuple[str, str, str], tuple[list[int], list[float]]] = {}
    for run_id, lang, step, ppl in store.query(_EVALS, params).rows:
        steps, values = points.setdefault((run_id, "eval", lang), ([], []))
        steps.append(int(step))
        values.append(float(ppl))
    for run_id, step, lang_loss in store.query(_TRAIN, params | {"n": max_points}).rows:
        for lang, loss in (lang_loss or {}).items():
            if loss is None or not math.isfinite(loss) or loss > 50:
                continue
            steps, values = points.setdefault((run_id, "train", lang), ([], []))
            steps.append(int(step))
            values.append(math.exp(loss))
    for (run_id, metric, lang), (steps, values) in points.items():
        run = runs.get(run_id)
        if run is None:
            continue
        step = np.asarray(steps, dtype=np.int64)
        spec = specs[run_id]
        train = spec.get("train") or {}
        per_step = int(train.get("batch_size", 0)) * int(train.get("context", 0))
        run.curves[(metric, lang)] = Curve(
            step, step * per_step, _lang_tokens(run_id, spec, lang, step), np.asarray(values, dtype=float)
        )
    return runs


def _lang_tokens(run_id: str, spec: dict, lang: str, step: np.ndarray) -> np.ndarray:
    """Exact tokens seen in ``lang`` after each step (NaN where the spec cannot say)."""
    cumulative = _cumulative(run_id, json.dumps(spec, sort_keys=True)) if spec.get("schedule") else None
    languages = spec.get("languages") or []
    if cumulative is None or lang not in languages:
        return np.full(len(step), np.nan)
    seen = cumulative[languages.index(lang)]
    return seen[np.clip(step, 0, len(seen) - 1)].astype(float)


@functools.lru_cache(maxsize=256)
def _cumulative(run_id: str, spec_json: str) -> np.ndarray | None:
    """(languages, steps + 1) cumulative tokens per language; a run id names one spec, so
    the expansion of its schedule is kept (keyed by the spec too, to be safe)."""
    try:
        seen = tokens_seen(json.loads(spec_json))
    except (KeyError, TypeError, ValueError):
        return None
    return np.stack([seen[i] for i in sorted(seen)])


def _shares(spec: dict) -> dict[str, str]:
    from engine.config.schedule import Schedule

    try:
        schedule = Schedule.from_dict(spec["schedule"])
    except (KeyError, TypeError, ValueError):
        return {}
    return {lang: schedule.share_label(lang) for lang in schedule.languages}
