"""Two schedules of one experiment compared seed by seed: ``xling report --compare A B``.

Runs with the same seed share their data order and initialisation, so A is measured
against B seed by seed (``engine.analysis.uncertainty.paired_difference``), which takes
the shared seed effect out of the noise; a TEff comparison adds the part of its law's
error the two schedules do not share. Each compared measure gets a plain verdict and
the number of seeds that would resolve what was seen. The TUI's compare view and its
experiment view use the same functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from db.current import CURRENT
from db.summary import (
    GRADIENT_MEAN,
    MEASURES,
    Measure,
    Observation,
    groups,
    law_replicates,
    read_bootstraps,
    read_observations,
    store_fetch,
    summarise_group,
)
from engine.analysis.scaling import LawBootstrap
from engine.analysis.uncertainty import PairedDifference, Spread, paired_difference, replicate_spread


@dataclass
class PairedRow:
    """A minus B for one measure, seed by seed; ``change`` and ``verdict`` are what to print."""

    measure: str
    language: str
    detail: str
    a: str  # A's own summary cell
    b: str
    n: int  # seeds paired
    mean: float
    lo: float | None
    hi: float | None
    scale: str
    change: str  # '-12.3% [-20.1%, -3.5%]' (log scale) or '+0.120 [+0.050, +0.190]'
    verdict: str  # better | worse | higher | lower | not distinguishable at n=3 | ...
    seeds_needed: int | None  # to resolve the observed difference at the observed spread (80% power)
    method: str


@dataclass
class Comparison:
    experiment: str
    a: str
    b: str
    rows: list[PairedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def schedule_names(store, experiment: str) -> list[str]:
    """Names of the experiment's current runs that have finished (what can be compared)."""
    rows = store.query(
        f"SELECT DISTINCT r.name FROM runs r WHERE r.experiment = $experiment AND r.status = 'done' AND {CURRENT} "
        "ORDER BY 1",
        {"experiment": experiment},
    ).rows
    return [r[0] for r in rows]


def compare_observations(
    experiment: str,
    observations: list[Observation],
    bootstraps: Mapping[tuple[str, str], LawBootstrap],
    a: str,
    b: str,
) -> Comparison:
    """A against B, per compared measure both have, paired by seed."""
    by_key = groups(observations)
    out = Comparison(experiment, a, b)
    for (name, measure, language, detail), obs_a in by_key.items():
        m = MEASURES[measure]
        obs_b = by_key.get((b, measure, language, detail))
        if name != a or obs_b is None or not m.compared:
            continue
        if measure == "gradient_similarity" and detail != GRADIENT_MEAN:
            continue  # per component: the report's table; the verdict is on the summary
        row = _paired_row(experiment, m, obs_a, obs_b, bootstraps)
        if row is not None:
            out.rows.append(row)
    order = list(MEASURES)
    out.rows.sort(key=lambda r: (order.index(r.measure), r.language, _detail_order(r.detail)))
    unpaired = {o.seed for o in observations if o.name == a} ^ {o.seed for o in observations if o.name == b}
    if unpaired:
        out.notes.append(f"seeds {sorted(unpaired)} ran for only one of the two and are left out of the pairs")
    if not out.rows:
        out.notes.append(f"nothing to compare: {a!r} and {b!r} have no finished measure with a seed in common")
    return out


def _detail_order(detail: str) -> tuple[int, str]:
    """Layers in numeric order ('10' after '9'), other parts by name."""
    return (int(detail), "") if detail.isdigit() else (-1, detail)


def _paired_row(
    experiment: str,
    m: Measure,
    obs_a: list[Observation],
    obs_b: list[Observation],
    bootstraps: Mapping[tuple[str, str], LawBootstrap],
) -> PairedRow | None:
    va = {o.seed: o.value for o in obs_a if o.value is not None}
    vb = {o.seed: o.value for o in obs_b if o.value is not None}
    seeds = sorted(set(va) & set(vb))
    if not seeds:
        return None
    extra, method = None, ("paired t, log scale" if m.scale == "log" else "paired t")
    if m.name == "teff":
        extra = _paired_law_spread(
            [next(o for o in obs_a if o.seed == s) for s in seeds],
            [next(o for o in obs_b if o.seed == s) for s in seeds],
            bootstraps,
        )
        method += " + law bootstrap" if extra is not None else ""
    d = paired_difference(va, vb, m.scale, extra=extra)
    first = obs_a[0]
    return PairedRow(
        measure=m.name,
        language=first.language,
        detail=first.detail,
        a=summarise_group(experiment, obs_a, bootstraps).text,
        b=summarise_group(experiment, obs_b, bootstraps).text,
        n=d.n,
        mean=d.mean,
        lo=d.lo,
        hi=d.hi,
        scale=m.scale,
        change=d.text(m.digits if m.scale == "linear" else 2),
        verdict=verdict(m, d),
        seeds_needed=None if d.resolved else d.seeds_needed,
        method=method,
    )


def _paired_law_spread(
    obs_a: list[Observation], obs_b: list[Observation], bootstraps: Mapping[tuple[str, str], LawBootstrap]
) -> Spread | None:
    """The law's error in a TEff ratio: the part both schedules share cancels seed by seed."""
    ra, rb = law_replicates(obs_a, bootstraps), law_replicates(obs_b, bootstraps)
    if ra is None or rb is None or ra[0].shape != rb[0].shape:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return replicate_spread(ra[0] / rb[0], min(ra[1], rb[1]))


def verdict(m: Measure, d: PairedDifference) -> str:
    """Plain words for A against B: better/worse where the measure has a better side."""
    if d.lo is None:
        return "n=1: no verdict" if d.n < 2 else "no verdict: no interval (see the scaling law's notes)"
    direction = d.direction()
    if direction == 0:
        return f"not distinguishable at n={d.n}"
    if m.better is None:
        return "higher" if direction > 0 else "lower"
    return "better" if (direction < 0) == (m.better == "lower") else "worse"


def paired_comparison(store, experiment: str, a: str, b: str) -> Comparison:
    """``a`` against ``b`` in ``experiment``, read now (``xling report --compare``, the TUI)."""
    fetch = store_fetch(store)
    observations = read_observations(fetch, experiment)
    return compare_observations(experiment, observations, read_bootstraps(fetch, experiment), a, b)


def needed_text(row: PairedRow) -> str:
    """'' when resolved, the number of seeds, or '—' when no number of seeds would do."""
    if not row.verdict.startswith("not distinguishable"):
        return ""
    return f"{row.seeds_needed}" if row.seeds_needed is not None else "—"
