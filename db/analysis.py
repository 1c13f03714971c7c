"""Derived results, recomputed whenever a run finishes: scaling laws, token efficiency, seed summaries.

The paper's TEff needs two things no single run has: the monolingual scaling law of
its experiment (fitted on the finished baseline runs) and the exact number of tokens
a run saw in each language by each evaluation (from its schedule). Each law comes with
its bootstrap (its error), so every TEff, MLTE and MLPE carries an interval; then the
experiment's final results are summarised over seeds (``db.summary``, the ``summary``
table). All of it is derived from what the database already holds, so the tables here
are rebuilt, per experiment, rather than appended to; numpy/scipy only, no torch.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from db import summary
from db.bulk import ndjson_source, stamp, write_ndjson
from db.current import CURRENT
from engine.analysis.scaling import LawBootstrap, ScalingError, ScalingLaw, bootstrap_law, fit_scaling_law
from engine.analysis.uncertainty import WIDE, law_interval
from engine.config.schedule import Schedule

__all__ = ["CURRENT", "refresh", "refresh_finished", "tokens_seen"]


_FIT_COLUMNS = {
    "experiment": "VARCHAR",
    "model": "VARCHAR",
    "language": "VARCHAR",
    "form": "VARCHAR",
    "params": "JSON",
    "budget": "DOUBLE",
    "n_points": "BIGINT",
    "token_min": "DOUBLE",
    "token_max": "DOUBLE",
    "residuals": "DOUBLE[]",
    "run_ids": "VARCHAR[]",
    "warnings": "VARCHAR[]",
    "error": "VARCHAR",
    "law": "JSON",
    "bootstrap": "JSON",
    "updated": "TIMESTAMP",
}
_TEFF_COLUMNS = {
    "run_id": "VARCHAR",
    "language": "VARCHAR",
    "step": "BIGINT",
    "experiment": "VARCHAR",
    "law_language": "VARCHAR",
    "tokens_seen": "BIGINT",
    "ppl": "DOUBLE",
    "mlte": "DOUBLE",
    "mlte_lo": "DOUBLE",
    "mlte_hi": "DOUBLE",
    "mlte_status": "VARCHAR",
    "mlpe": "DOUBLE",
    "mlpe_lo": "DOUBLE",
    "mlpe_hi": "DOUBLE",
    "mlpe_status": "VARCHAR",
    "teff": "DOUBLE",
    "teff_lo": "DOUBLE",
    "teff_hi": "DOUBLE",
    "law_wide": "BOOLEAN",
    "teff_status": "VARCHAR",
    "teff_mark": "VARCHAR",
}


def refresh(con: duckdb.DuckDBPyConnection, experiments: list[str] | None = None) -> int:
    """Refits the laws and recomputes TEff for ``experiments`` (all when None); returns fits made."""
    if experiments is None:
        experiments = [
            r[0] for r in con.execute("SELECT DISTINCT experiment FROM runs WHERE experiment IS NOT NULL").fetchall()
        ]
    fits, teffs, done = [], [], []
    for exp in experiments:
        try:
            laws, exp_fits = _fit_experiment(con, exp)
            exp_teffs = _teff_rows(con, exp, laws)
        except Exception:  # noqa: BLE001 - analysis must never block an ingest; the report retries
            continue
        fits += exp_fits
        teffs += exp_teffs
        done.append(exp)
    experiments = done
    with tempfile.TemporaryDirectory(prefix="xling-analysis-") as tmp:
        con.execute("DELETE FROM scaling_fits WHERE list_contains(?::VARCHAR[], experiment)", [experiments])
        con.execute("DELETE FROM teff WHERE list_contains(?::VARCHAR[], experiment)", [experiments])
        if fits:
            src = ndjson_source(write_ndjson(Path(tmp) / "fits.ndjson", fits), _FIT_COLUMNS)
            con.execute(f"INSERT INTO scaling_fits SELECT {', '.join(_FIT_COLUMNS)} FROM {src}")
        if teffs:
            src = ndjson_source(write_ndjson(Path(tmp) / "teff.ndjson", teffs), _TEFF_COLUMNS)
            con.execute(f"INSERT OR REPLACE INTO teff SELECT {', '.join(_TEFF_COLUMNS)} FROM {src}")
        summary.store_summaries(con, experiments, Path(tmp))  # reads the laws and TEff just written
    return sum(f["error"] is None for f in fits)


def _final_baseline_points(con: duckdb.DuckDBPyConnection, exp: str) -> dict[tuple[str, str], list[tuple]]:
    """(model, language) -> [(run_id, tokens, ppl)] of finished monolingual runs, final evals."""
    rows = con.execute(
        f"""SELECT r.model, e.language, r.run_id, r.total_tokens, e.ppl, r.spec->>'$.budget_tokens'
           FROM runs r JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
           WHERE r.experiment = ? AND r.kind = 'baseline' AND r.status = 'done' AND {CURRENT}
           ORDER BY r.total_tokens, r.run_id""",
        [exp],
    ).fetchall()
    points: dict[tuple[str, str], list[tuple]] = {}
    for model, lang, run_id, tokens, ppl, budget in rows:
        points.setdefault((model, lang), []).append((run_id, tokens, ppl, float(budget)))
    return points


def _scaling_form(con: duckdb.DuckDBPyConnection, exp: str) -> str:
    row = con.execute("SELECT config->>'$.scaling_law' FROM experiments WHERE name = ?", [exp]).fetchone()
    return row[0] if row and row[0] else "paper"


Laws = dict[tuple[str, str], tuple[ScalingLaw, LawBootstrap]]


def _fit_experiment(con: duckdb.DuckDBPyConnection, exp: str) -> tuple[Laws, list[dict]]:
    form = _scaling_form(con, exp)
    laws, rows = {}, []
    now = stamp(time.time())
    for (model, lang), pts in _final_baseline_points(con, exp).items():
        run_ids = [p[0] for p in pts]
        row: dict[str, Any] = {
            "experiment": exp,
            "model": model,
            "language": lang,
            "form": form,
            "budget": pts[0][3],
            "n_points": len(pts),
            "run_ids": run_ids,
            "updated": now,
            "token_min": min(p[1] for p in pts),
            "token_max": max(p[1] for p in pts),
            "error": None,
            "params": None,
            "residuals": None,
            "warnings": None,
            "law": None,
            "bootstrap": None,
        }
        try:
            law = fit_scaling_law([p[1] for p in pts], [p[2] for p in pts], budget=pts[0][3], form=form)
        except (ScalingError, RuntimeError, ValueError) as exc:
            row["error"] = str(exc)
        else:
            boot = bootstrap_law(law)
            laws[(model, lang)] = (law, boot)
            row.update(
                params=law.params,
                residuals=list(law.residuals),
                warnings=list(law.warnings),
                law=law.to_dict(),
                bootstrap=boot.to_dict(),
            )
        rows.append(row)
    return laws, rows


def _law_for(laws: Laws, model: str, lang: str, spec: dict) -> tuple[str, tuple[ScalingLaw, LawBootstrap]] | None:
    """A language's own law, else (cloned languages are the same text) the baselines' language's."""
    if (model, lang) in laws:
        return lang, laws[(model, lang)]
    if spec.get("data", {}).get("kind", "cloned") == "cloned":
        for (m, other), law in sorted(laws.items(), key=lambda item: item[0]):
            if m == model:
                return other, law
    return None


def tokens_seen(spec: dict) -> dict[int, np.ndarray]:
    """Exact tokens per language after each step: cumulative counts of the schedule's labels."""
    t = spec["train"]
    labels = Schedule.from_dict(spec["schedule"]).sequence_languages(spec["total_steps"], t["batch_size"], spec["seed"])
    n_lang = len(spec["languages"])
    per_step = np.stack([(labels == i).sum(axis=1) for i in range(n_lang)])  # (N, steps)
    cum = np.concatenate([np.zeros((n_lang, 1), dtype=np.int64), np.cumsum(per_step, axis=1)], axis=1)
    return {i: cum[i] * t["context"] for i in range(n_lang)}


def _teff_rows(con: duckdb.DuckDBPyConnection, exp: str, laws: Laws) -> list[dict]:
    if not laws:
        return []
    evals = con.execute(
        f"""SELECT r.run_id, r.model, r.spec, e.language, e.step, e.ppl
           FROM runs r JOIN evals e USING (run_id) WHERE r.experiment = ? AND e.step > 0 AND {CURRENT}
           ORDER BY r.run_id, e.step""",
        [exp],
    ).fetchall()
    rows, per_run = [], {}
    for run_id, model, spec_json, lang, step, ppl in evals:
        if run_id not in per_run:  # one spec parse and one schedule expansion per run
            spec = json.loads(spec_json)
            per_run[run_id] = (spec, tokens_seen(spec))
        spec, seen = per_run[run_id]
        chosen = _law_for(laws, model, lang, spec)
        if chosen is None or lang not in spec["languages"] or ppl is None:
            continue
        t_a = int(seen[spec["languages"].index(lang)][min(step, spec["total_steps"])])
        if t_a <= 0:
            continue
        law_lang, (law, boot) = chosen
        rows.append(
            {"run_id": run_id, "language": lang, "step": step, "experiment": exp, "law_language": law_lang}
            | _estimates(law, boot, ppl, t_a)
        )
    return rows


def _estimates(law: ScalingLaw, boot: LawBootstrap, ppl: float, tokens: int) -> dict[str, Any]:
    """MLTE, MLPE and TEff of one evaluation, each with the law's 95% interval."""
    mlte, mlpe, teff = law.mlte(ppl), law.mlpe(tokens), law.teff(ppl, tokens)
    mlte_lo, mlte_hi = law_interval(mlte.value, boot.mlte(ppl), boot.df)
    mlpe_lo, mlpe_hi = law_interval(mlpe.value, boot.mlpe(tokens), boot.df)
    teff_lo, teff_hi = law_interval(teff.value, boot.teff(ppl, tokens), boot.df)
    wide = None if teff_lo is None or teff_hi is None else bool(teff_lo <= 0 or teff_hi / teff_lo > WIDE)
    return {
        "tokens_seen": tokens,
        "ppl": ppl,
        "mlte": mlte.value,
        "mlte_lo": mlte_lo,
        "mlte_hi": mlte_hi,
        "mlte_status": mlte.status,
        "mlpe": mlpe.value,
        "mlpe_lo": mlpe_lo,
        "mlpe_hi": mlpe_hi,
        "mlpe_status": mlpe.status,
        "teff": teff.value,
        "teff_lo": teff_lo,
        "teff_hi": teff_hi,
        "law_wide": wide,
        "teff_status": teff.status,
        "teff_mark": teff.mark(),
    }


def refresh_finished(con: duckdb.DuckDBPyConnection, finished: list[str]) -> None:
    """A finished run can change its experiment's scaling law and every TEff in it.

    Its own transaction, after the events are committed: derived tables may fail or
    lag (the report recomputes them), the measurements themselves never wait on them.
    """
    if not finished:
        return
    rows = con.execute("SELECT DISTINCT experiment FROM runs WHERE list_contains(?::VARCHAR[], run_id)", [finished])
    experiments = [r[0] for r in rows.fetchall() if r[0] is not None]
    if not experiments:
        return
    con.begin()
    try:
        refresh(con, experiments)
        con.commit()
    except Exception:  # noqa: BLE001 - never lose an ingest to the analysis
        with contextlib.suppress(duckdb.Error):  # a failed commit (a full disk) has ended it already
            con.rollback()
