"""Derived results, recomputed whenever a run finishes: scaling laws, token efficiency, seed summaries.

The paper's TEff needs two things no single run has: the monolingual scaling law (fitted
on every finished baseline run with the same law key, whichever experiment asked for it,
in absolute tokens: ``engine.config.spec.law_key``) and the exact number of tokens
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from db import summary
from db.bulk import ndjson_source, stamp, write_ndjson
from engine.analysis.scaling import LawBootstrap, ScalingError, ScalingLaw, bootstrap_law, fit_scaling_law
from engine.analysis.uncertainty import WIDE, law_interval
from engine.config.locate import SpecError
from engine.config.schedule import Schedule
from engine.config.spec import RunSpec, law_key

__all__ = ["refresh", "refresh_finished", "tokens_seen"]


_FIT_COLUMNS = {
    "experiment": "VARCHAR",
    "law_key": "VARCHAR",
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
    "law_key": "VARCHAR",
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
        experiments = [r[0] for r in con.execute("SELECT DISTINCT experiment FROM member_runs").fetchall()]
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


def _law_keys(con: duckdb.DuckDBPyConnection, where: str = "TRUE", params: list | None = None) -> dict[str, str]:
    """run_id -> its law key (``engine.config.spec.law_key``), for the runs ``where`` selects."""
    out = {}
    for run_id, spec_json in con.execute(f"SELECT run_id, spec FROM runs r WHERE {where}", params or []).fetchall():
        key = _law_key(spec_json)
        if key is not None:
            out[run_id] = key
    return out


def _law_key(spec_json: str | None) -> str | None:
    if spec_json is None:
        return None
    try:
        return law_key(RunSpec.from_json(spec_json))
    except (SpecError, TypeError, ValueError):  # a spec this xling cannot read has no law
        return None


def _final_baseline_points(con: duckdb.DuckDBPyConnection, keys: set[str]) -> dict[tuple[str, str], list[tuple]]:
    """(law key, language) -> [(run_id, tokens, ppl, model)] of every finished monolingual run
    with one of ``keys``, whichever experiment asked for it: final evals, in absolute tokens."""
    rows = con.execute(
        """SELECT r.run_id, r.spec, r.model, e.language, r.total_tokens, e.ppl
           FROM runs r JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
           WHERE r.kind = 'baseline' AND r.status = 'done' AND e.ppl IS NOT NULL
           ORDER BY r.total_tokens, r.run_id"""
    ).fetchall()
    points: dict[tuple[str, str], list[tuple]] = {}
    for run_id, spec_json, model, lang, tokens, ppl in rows:
        key = _law_key(spec_json)
        if key in keys:
            points.setdefault((key, lang), []).append((run_id, tokens, ppl, model))
    return points


def _scaling_form(con: duckdb.DuckDBPyConnection, exp: str) -> str:
    row = con.execute("SELECT config->>'$.scaling_law' FROM experiments WHERE name = ?", [exp]).fetchone()
    return row[0] if row and row[0] else "paper"


Laws = dict[tuple[str, str], tuple[ScalingLaw, LawBootstrap]]  # (law key, language) -> law


def _fit_experiment(con: duckdb.DuckDBPyConnection, exp: str) -> tuple[Laws, list[dict]]:
    """The laws of every law key among the experiment's runs, each on all its baselines."""
    form = _scaling_form(con, exp)
    keys = set(_law_keys(con, "r.run_id IN (SELECT run_id FROM member_runs WHERE experiment = ?)", [exp]).values())
    laws, rows = {}, []
    now = stamp(time.time())
    for (key, lang), pts in _final_baseline_points(con, keys).items():
        run_ids = [p[0] for p in pts]
        budget = float(max(p[1] for p in pts))  # only the scale of x: the law is in absolute tokens
        row: dict[str, Any] = {
            "experiment": exp,
            "law_key": key,
            "model": pts[0][3],
            "language": lang,
            "form": form,
            "budget": budget,
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
            law = fit_scaling_law([p[1] for p in pts], [p[2] for p in pts], budget=budget, form=form)
        except (ScalingError, RuntimeError, ValueError) as exc:
            row["error"] = str(exc)
        else:
            boot = bootstrap_law(law)
            laws[(key, lang)] = (law, boot)
            row.update(
                params=law.params,
                residuals=list(law.residuals),
                warnings=list(law.warnings),
                law=law.to_dict(),
                bootstrap=boot.to_dict(),
            )
        rows.append(row)
    return laws, rows


def _law_for(laws: Laws, key: str, lang: str, spec: dict) -> tuple[str, tuple[ScalingLaw, LawBootstrap]] | None:
    """A language's own law, else (cloned languages are the same text) the baselines' language's."""
    if (key, lang) in laws:
        return lang, laws[(key, lang)]
    if spec.get("data", {}).get("kind", "cloned") == "cloned":
        for (k, other), law in sorted(laws.items(), key=lambda item: item[0]):
            if k == key:
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
        """SELECT r.run_id, r.model, r.spec, e.language, e.step, e.ppl
           FROM member_runs r JOIN evals e USING (run_id) WHERE r.experiment = ? AND e.step > 0
           ORDER BY r.run_id, e.step""",
        [exp],
    ).fetchall()
    rows, per_run = [], {}
    for run_id, _model, spec_json, lang, step, ppl in evals:
        if run_id not in per_run:  # one spec parse and one schedule expansion per run
            spec = json.loads(spec_json)
            per_run[run_id] = (spec, tokens_seen(spec), _law_key(spec_json))
        spec, seen, key = per_run[run_id]
        chosen = _law_for(laws, key, lang, spec) if key else None
        if chosen is None or lang not in spec["languages"] or ppl is None:
            continue
        t_a = int(seen[spec["languages"].index(lang)][min(step, spec["total_steps"])])
        if t_a <= 0:
            continue
        law_lang, (law, boot) = chosen
        row = {"run_id": run_id, "language": lang, "step": step, "experiment": exp, "law_key": key}
        rows.append(row | {"law_language": law_lang} | _estimates(law, boot, ppl, t_a))
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


def _experiments_using(con: duckdb.DuckDBPyConnection, finished: list[str]) -> list[str]:
    """Experiments a finished run can change: those it belongs to, and those with a run of its law
    key (a baseline sharpens every experiment's law with that key)."""
    if not finished:
        return []
    done = _law_keys(con, "list_contains(?::VARCHAR[], r.run_id)", [finished])
    keys = set(done.values())
    sharing = [rid for rid, key in _law_keys(con).items() if key in keys] if keys else []
    rows = con.execute(
        "SELECT DISTINCT experiment FROM member_runs WHERE list_contains(?::VARCHAR[], run_id)",
        [list(finished) + sharing],
    ).fetchall()
    return [r[0] for r in rows if r[0] is not None]


def refresh_finished(con: duckdb.DuckDBPyConnection, finished: list[str], changed: Sequence[str] = ()) -> None:
    """A finished run can change the scaling law and every TEff of each experiment it belongs to;
    so can an experiment's new definition (``changed``: finished runs it now shares).

    Its own transaction, after the events are committed: derived tables may fail or
    lag (the report recomputes them), the measurements themselves never wait on them.
    """
    if not finished and not changed:
        return
    experiments = sorted(set(_experiments_using(con, finished)) | set(changed))
    if not experiments:
        return
    con.begin()
    try:
        refresh(con, experiments)
        con.commit()
    except Exception:  # noqa: BLE001 - never lose an ingest to the analysis
        with contextlib.suppress(duckdb.Error):  # a failed commit (a full disk) has ended it already
            con.rollback()
