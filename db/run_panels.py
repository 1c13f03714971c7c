"""What the TUI's run and compare screens show, read from the results database.

Each function reads through ``Store.query`` (read-only, lock-tolerant) and returns plain
dataclasses, so a screen's thread worker can build them and hand them to the UI thread
as they are. Long curves are cut down here, in SQL, to a bounded number of points
(the widget draws at most a few hundred columns), so a 100k-step run costs no more to
show than a short one. The compare table is ``xling report``'s, not a copy of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from db.store import Store
from engine.runs.summary import RunSummary

MAX_POINTS = 400  # per curve; more than a terminal plot has columns


@dataclass(frozen=True, kw_only=True)
class RunInfo(RunSummary):
    """The run screen's header: the summary, the model and the languages."""

    model: str | None
    languages: list[str]


@dataclass
class Curve:
    """One line: x (tokens) and y values, in order."""

    label: str
    x: list[float]
    y: list[float]


@dataclass
class CurvePanel:
    train: list[Curve] = field(default_factory=list)  # exp(training loss) per language, decimated
    evals: list[Curve] = field(default_factory=list)  # held-out PPL per language


@dataclass
class TeffPoint:
    run_id: str
    run_name: str
    language: str
    step: int
    tokens_seen: float
    ppl: float
    mlte: float | None
    teff: float | None
    mark: str | None
    status: str | None
    lo: float | None = None  # the law's 95% interval of teff (this run's PPL as measured)
    hi: float | None = None
    wide: bool | None = None  # hi / lo > 2: the law is too uncertain to answer


@dataclass
class TeffPanel:
    law_label: str | None  # e.g. "power law cpu-xs/EN1: PPL = 110.3·x^-0.449"
    law_error: str | None
    curve: list[tuple[float, float]]  # (tokens, ppl) of the fitted law, over the range plotted
    baselines: list[tuple[float, float]]  # (tokens, ppl) of finished monolingual runs
    points: list[TeffPoint]  # every multilingual run's languages at their latest evaluation
    seeds: list = field(default_factory=list)  # db.summary.SummaryRow: PPL and TEff of the run's schedule over seeds


@dataclass
class AlignmentPanel:
    step: int | None
    embeddings: list[dict[str, Any]]  # matrix, lang_a, lang_b, similarity, control
    hidden: dict[str, list[float | None]]  # "EN1–EN2" -> similarity per layer (0 = embeddings)
    gradients: dict[str, dict[str, float]]  # pair -> component -> mean similarity over blocks
    gradient_mean: dict[str, float]  # pair -> unweighted mean over tensors


_RUN = """
SELECT r.run_id, r.experiment, r.name, r.kind, coalesce(r.status, 'queued'), r.step, r.total_steps, r.model,
       r.languages, r.device, r.message,
       (SELECT t.tokens_per_s FROM train_metrics t WHERE t.run_id = r.run_id ORDER BY t.step DESC LIMIT 1)
FROM runs r WHERE r.run_id = $run_id
"""

# Every k-th row so that at most $n rows come back, always keeping the last one.
_TRAIN = """
WITH t AS (
    SELECT step, tokens, lang_loss, row_number() OVER (ORDER BY step) - 1 AS i, count(*) OVER () AS n
    FROM train_metrics WHERE run_id = $run_id
)
SELECT step, tokens, lang_loss FROM t
WHERE i % greatest(1, ceil(n / $n)::BIGINT) = 0 OR i = n - 1
ORDER BY step
"""

_EVALS = """
SELECT run_id, language, step, tokens, ppl FROM evals
WHERE list_contains(CAST($run_ids AS VARCHAR[]), run_id) AND ppl IS NOT NULL
ORDER BY run_id, language, step
"""

_LAW = """
SELECT f.model, f.language, f.form, f.params, f.law, f.error
FROM scaling_fits f WHERE f.experiment = $experiment AND f.model = $model
ORDER BY f.language = $language DESC, f.language LIMIT 1
"""

_BASELINES = """
SELECT r.total_tokens, e.ppl FROM member_runs r JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
WHERE r.experiment = $experiment AND r.model = $model AND r.kind = 'baseline' AND r.status = 'done'
  AND e.language = $language
ORDER BY r.total_tokens
"""

_TEFF = """
SELECT t.run_id, r.name, t.language, t.step, t.tokens_seen, t.ppl, t.mlte, t.teff, t.teff_mark, t.teff_status,
       t.teff_lo, t.teff_hi, t.law_wide
FROM teff t JOIN member_runs r ON r.run_id = t.run_id AND r.experiment = t.experiment
WHERE t.experiment = $experiment AND r.kind = 'mix' AND r.model = $model
QUALIFY row_number() OVER (PARTITION BY t.run_id, t.language ORDER BY t.step DESC) = 1
ORDER BY r.name, r.seed, t.language
"""

_ALIGN_STEP = """
SELECT max(step) FROM (
    SELECT step FROM align_embeddings WHERE run_id = $run_id
    UNION ALL SELECT step FROM align_hidden WHERE run_id = $run_id
    UNION ALL SELECT step FROM align_gradients WHERE run_id = $run_id)
"""

_ALIGN_EMB = """
SELECT matrix, lang_a, lang_b, similarity, control FROM align_embeddings
WHERE run_id = $run_id AND step = $step ORDER BY lang_b, matrix
"""

_ALIGN_HIDDEN = """
SELECT lang_a, lang_b, layer, similarity FROM align_hidden
WHERE run_id = $run_id AND step = $step ORDER BY lang_b, layer
"""

_ALIGN_GRAD = """
SELECT lang_a, lang_b, regexp_replace(tensor, '^blocks\\.[0-9]+\\.', '') AS component, favg(similarity),
       count(*)
FROM align_gradients WHERE run_id = $run_id AND step = $step
GROUP BY ALL ORDER BY lang_b, component
"""


def run_info(store: Store, run_id: str) -> RunInfo | None:
    rows = store.query(_RUN, {"run_id": run_id}).rows
    if not rows:
        return None
    r = rows[0]
    return RunInfo(
        run_id=r[0],
        experiment=r[1],
        name=r[2],
        kind=r[3],
        status=r[4],
        step=r[5],
        total_steps=r[6],
        model=r[7],
        languages=list(r[8] or []),
        device=r[9],
        message=r[10],
        tokens_per_s=r[11],
    )


def curves(store: Store, run_id: str, max_points: int = MAX_POINTS) -> CurvePanel:
    """Training PPL (exp of the per-language loss) and held-out PPL per language, by tokens."""
    panel = CurvePanel()
    train: dict[str, Curve] = {}
    for _step, tokens, lang_loss in store.query(_TRAIN, {"run_id": run_id, "n": max_points}).rows:
        for lang, loss in (lang_loss or {}).items():
            if loss is None or not math.isfinite(loss) or loss > 50:
                continue
            curve = train.setdefault(lang, Curve(lang, [], []))
            curve.x.append(float(tokens or 0))
            curve.y.append(math.exp(loss))
    panel.train = [train[k] for k in sorted(train)]
    panel.evals = list(eval_curves(store, [run_id]).get(run_id, {}).values())
    return panel


def eval_curves(store: Store, run_ids: list[str]) -> dict[str, dict[str, Curve]]:
    """run_id -> language -> held-out PPL by tokens (evaluations are few; never decimated)."""
    out: dict[str, dict[str, Curve]] = {}
    for run_id, lang, _step, tokens, ppl in store.query(_EVALS, {"run_ids": list(run_ids)}).rows:
        curve = out.setdefault(run_id, {}).setdefault(lang, Curve(lang, [], []))
        curve.x.append(float(tokens or 0))
        curve.y.append(float(ppl))
    return out


def teff_panel(
    store: Store, experiment: str, model: str, language: str | None = None, name: str | None = None
) -> TeffPanel:
    """The experiment's monolingual law with its points, every mix run's languages at their MLTE,
    and (for the run named ``name``) its schedule's PPL and TEff over seeds."""
    panel = _teff_panel(store, experiment, model, language)
    if name is not None:
        from db.summary import schedule_summary

        panel.seeds = schedule_summary(store, experiment, name, ("ppl", "teff"))
    return panel


def _teff_panel(store: Store, experiment: str, model: str, language: str | None) -> TeffPanel:
    from engine.analysis.scaling import ScalingError, ScalingLaw

    law_rows = store.query(_LAW, {"experiment": experiment, "model": model, "language": language or ""}).rows
    points = [
        TeffPoint(r[0], r[1], r[2], r[3], float(r[4] or 0), float(r[5]), *r[6:])
        for r in store.query(_TEFF, {"experiment": experiment, "model": model}).rows
    ]
    if not law_rows:
        return TeffPanel(None, "no scaling law yet: it needs finished monolingual baselines", [], [], points)
    _model, law_lang, form, params, law_json, error = law_rows[0]
    baselines = [
        (float(t), float(p))
        for t, p in store.query(_BASELINES, {"experiment": experiment, "model": model, "language": law_lang}).rows
    ]
    if error or not law_json:
        return TeffPanel(None, f"no fit for {model}/{law_lang}: {error}", [], baselines, points)
    try:
        law = ScalingLaw.from_dict(json.loads(law_json) if isinstance(law_json, str) else law_json)
    except ScalingError as exc:
        return TeffPanel(None, str(exc), [], baselines, points)
    xs = [t for t, _ in baselines] + [p.tokens_seen for p in points] + [p.mlte for p in points if p.mlte]
    lo, hi = min(xs + [law.token_range[0]]), max(xs + [law.token_range[1]])
    return TeffPanel(_law_label(law, model, law_lang), None, law.curve(60, lo, hi), baselines, points)


def _law_label(law, model: str, language: str) -> str:
    p = law.params
    if law.form == "power":
        text = f"PPL = {p['k']:.4g}·x^-{p['b']:.3g}"
    else:
        text = f"1/PPL = {p['c']:.4g} − {p['a']:.4g}·x^-{p['b']:.3g}"
    return f"{law.form} law {model}/{language}: {text} (x = tokens / {law.budget:.3g})"


def alignment(store: Store, run_id: str) -> AlignmentPanel:
    """The run's newest alignment measurements (all three kinds at that step)."""
    step_rows = store.query(_ALIGN_STEP, {"run_id": run_id}).rows
    step = step_rows[0][0] if step_rows else None
    panel = AlignmentPanel(step, [], {}, {}, {})
    if step is None:
        return panel
    params = {"run_id": run_id, "step": step}
    panel.embeddings = store.query(_ALIGN_EMB, params).dicts()
    for lang_a, lang_b, layer, sim in store.query(_ALIGN_HIDDEN, params).rows:
        row = panel.hidden.setdefault(f"{lang_a}–{lang_b}", [])
        row.extend([None] * (layer + 1 - len(row)))
        row[layer] = sim
    weighted: dict[str, list[float]] = {}
    for lang_a, lang_b, component, sim, count in store.query(_ALIGN_GRAD, params).rows:
        pair = f"{lang_a}–{lang_b}"
        panel.gradients.setdefault(pair, {})[component] = sim
        weighted.setdefault(pair, []).extend([sim] * int(count))
    panel.gradient_mean = {pair: sum(v) / len(v) for pair, v in weighted.items() if v}
    return panel


def experiment_of(store: Store, run_ids: list[str]) -> list[str]:
    """The experiments the given runs belong to, in order of first appearance."""
    rows = store.query(
        "SELECT run_id, experiment FROM runs WHERE list_contains(CAST($ids AS VARCHAR[]), run_id)",
        {"ids": list(run_ids)},
    ).rows
    by_id = dict(rows)
    out: list[str] = []
    for rid in run_ids:
        exp = by_id.get(rid)
        if exp and exp not in out:
            out.append(exp)
    return out


def run_names(store: Store, run_ids: list[str]) -> dict[str, tuple[str, int | None]]:
    """run_id -> (name, seed), for legends and for finding a run's row in the report."""
    rows = store.query(
        "SELECT run_id, name, seed FROM runs WHERE list_contains(CAST($ids AS VARCHAR[]), run_id)",
        {"ids": list(run_ids)},
    ).rows
    return {rid: (str(name), seed) for rid, name, seed in rows}


# -- the run screen's spec, probe and alignment-over-training panels ---------------------

_SPEC = "SELECT spec FROM runs WHERE run_id = $run_id"

_PROBES = """
SELECT step, tokens, task, train_language, language, accuracy, chance, n_examples, train_accuracy
FROM probes WHERE run_id = $run_id
ORDER BY step, task, train_language, language = train_language DESC, language
"""

_ALIGN_STEPS = """
SELECT 'hidden' AS kind, step, tokens, lang_a, lang_b, CAST(layer AS VARCHAR) AS part, similarity
FROM align_hidden WHERE run_id = $run_id
UNION ALL
SELECT 'embedding', step, tokens, lang_a, lang_b, matrix, similarity FROM align_embeddings WHERE run_id = $run_id
UNION ALL
SELECT 'gradient', step, any_value(tokens), lang_a, lang_b, 'mean', favg(similarity)
FROM align_gradients WHERE run_id = $run_id GROUP BY step, lang_a, lang_b
ORDER BY kind, lang_b, step, part
"""


@dataclass
class AlignmentStep:
    """One measurement point: its step and tokens, and each pair's similarities there."""

    step: int
    tokens: int | None
    hidden: dict[str, list[float | None]] = field(default_factory=dict)  # pair -> per layer
    embedding: dict[str, dict[str, float]] = field(default_factory=dict)  # pair -> input/output -> sim
    gradient: dict[str, float] = field(default_factory=dict)  # pair -> mean over tensors


def run_spec(store: Store, run_id: str) -> dict[str, Any] | None:
    """The run's spec as logged (spec.json), parsed; None for a run not ingested yet."""
    rows = store.query(_SPEC, {"run_id": run_id}).rows
    if not rows or rows[0][0] is None:
        return None
    spec = rows[0][0]
    return json.loads(spec) if isinstance(spec, str) else spec


def probe_results(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every probe result of the run (the fine-tuning language first at each step)."""
    return store.query(_PROBES, {"run_id": run_id}).dicts()


def alignment_steps(store: Store, run_id: str) -> list[AlignmentStep]:
    """The alignment measurements at each step they were taken (several when the run has
    ``eval.alignment_at_evals``), oldest first."""
    by_step: dict[int, AlignmentStep] = {}
    for kind, step, tokens, lang_a, lang_b, part, sim in store.query(_ALIGN_STEPS, {"run_id": run_id}).rows:
        point = by_step.setdefault(step, AlignmentStep(step, tokens))
        pair = f"{lang_a}–{lang_b}"
        if kind == "hidden":
            row = point.hidden.setdefault(pair, [])
            layer = int(part)
            row.extend([None] * (layer + 1 - len(row)))
            row[layer] = sim
        elif kind == "embedding":
            point.embedding.setdefault(pair, {})[part] = sim
        else:
            point.gradient[pair] = sim
    return [by_step[s] for s in sorted(by_step)]
