"""``baselines = "auto"``: the monolingual runs a finished mix run's answer still lacks.

A mix run's TEff is read off the monolingual law at its MLTE; outside the range of
the baselines the law was fitted on, that is an extrapolation (flagged, never hidden).
For experiments that ask for "auto" baselines, ``xling run`` asks here which mix
runs' final MLTE fell outside, and adds a baseline that brings each inside
(``engine.config.spec.added_baselines``, capped by ``max_baselines``), then trains them.
"""

from __future__ import annotations

from db.store import Store
from engine.config.spec import Experiment, RunSpec, added_baselines

# A new baseline this much beyond an MLTE, so that the MLTE lies inside the new range.
MARGIN = 1.25

_OUTSIDE = """
SELECT t.run_id, t.law_language, t.mlte, t.mlte_status, f.token_min, f.token_max
FROM teff t
JOIN member_runs r ON r.run_id = t.run_id AND r.experiment = $experiment
LEFT JOIN scaling_fits f ON f.experiment = r.experiment AND f.law_key = t.law_key AND f.language = t.law_language
WHERE r.kind = 'mix' AND r.status = 'done' AND t.step = r.total_steps AND t.mlte_status <> 'inside'
ORDER BY t.run_id, t.language
"""


def add_missing_baselines(store: Store, exp: Experiment) -> list[RunSpec]:
    """Adds to ``exp.runs`` (``baselines = "auto"``) the baselines its mix runs' MLTEs lack; returns them."""
    if exp.config.baselines != "auto":
        return []
    mixes = {r.run_id: r for r in exp.runs if r.kind == "mix"}
    added = []
    for run_id, language, mlte, status, _, token_max in store.query(_OUTSIDE, {"experiment": exp.name}).rows:
        mix = mixes.get(run_id)
        tokens = _target(mlte, status, token_max)
        if mix is None or language is None or tokens is None:
            continue
        for spec in added_baselines(exp, mix, language, tokens):
            if spec.run_id not in {r.run_id for r in exp.runs}:
                exp.runs.insert(0, spec)  # baselines first; counted against the cap by the next one
                added.append(spec)
    return added


def _target(mlte: float | None, status: str, token_max: float | None) -> int | None:
    """How long a baseline must be for this answer to be read inside the law's range."""
    if status == "above" and mlte:
        return round(mlte * MARGIN)
    if status == "below" and mlte:
        return max(1, round(mlte / MARGIN))
    if status == "impossible" and token_max:  # below the law's asymptote: a longer baseline moves it
        return round(2 * token_max)
    return None
