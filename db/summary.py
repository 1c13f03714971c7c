"""An experiment's final results over seeds: what each measure is and where its seeds live.

Everything a front end shows with an interval comes from here (or, for two schedules
compared seed by seed, from ``db.paired``, which builds on it): ``xling report``,
``xling status``, the TUI's run and compare views, and the ``summary`` table (written by
``db.analysis`` whenever a run finishes, so a notebook reads the same numbers as the
report). The statistics are ``engine.analysis.uncertainty``'s; this module only knows
xling's measures and where their per-seed values live.

Only like is averaged with like: a group is one experiment's schedule (one mix, the
spec makes names unique), one measure, one language and one part of it, over the
seeds of its current definition's finished runs, at their final step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from db.bulk import ndjson_source, write_ndjson
from engine.analysis.scaling import LawBootstrap, ScalingError
from engine.analysis.uncertainty import Scale, Summary, replicate_spread, summarise

Fetch = Callable[[str, Mapping[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Measure:
    """What a measure is, for summaries: its scale, which way is better, its range."""

    name: str
    label: str
    scale: Scale
    better: str | None  # "lower" | "higher"; None: a direction, not a value judgement
    bounds: tuple[float, float] | None
    digits: int
    compared: bool  # part of a paired comparison


MEASURES = {
    m.name: m
    for m in (
        Measure("ppl", "PPL", "log", "lower", None, 1, True),
        Measure("teff", "TEff", "log", "higher", None, 2, True),
        Measure("embedding_similarity", "embedding similarity", "linear", None, (-1.0, 1.0), 3, True),
        Measure("embedding_control", "embedding control", "linear", None, (-1.0, 1.0), 3, False),
        Measure("hidden_similarity", "hidden-state similarity", "linear", None, (-1.0, 1.0), 2, True),
        Measure("gradient_similarity", "gradient similarity", "linear", None, (-1.0, 1.0), 3, True),
        Measure("probe_accuracy", "probe accuracy", "linear", "higher", (0.0, 1.0), 3, True),
        Measure("probe_chance", "probe chance", "linear", None, (0.0, 1.0), 3, False),
    )
}
GRADIENT_MEAN = "mean"  # the gradient summary's detail: unweighted mean over tensors
PROBE_TRAINED_IN = " (fine-tuned in "  # a probe's detail: '<task> (fine-tuned in <language>)'


def split_probe_detail(detail: str) -> tuple[str, str]:
    """(task, language it was fine-tuned in) of a probe measure's detail."""
    task, _, train = detail.rpartition(PROBE_TRAINED_IN)
    return task, train.removesuffix(")")


# One row per (run, measure, language, detail) at the run's final step. Means of many
# tensors use favg (a compensated sum): a parallel join hands avg its rows in any order,
# and a plain sum's last bit then flips a printed digit from one read to the next.
_OBSERVATIONS = f"""
WITH r AS (
    SELECT * FROM member_runs r WHERE r.experiment = $experiment AND r.status = 'done'
), obs AS (
    SELECT r.name, r.kind, r.seed, 'ppl' AS measure, e.language, '' AS detail, e.ppl AS value,
           NULL AS status, NULL AS mark, NULL AS law_key, NULL AS law_language, NULL AS tokens_seen, NULL AS ppl
    FROM r JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
    UNION ALL
    SELECT r.name, r.kind, r.seed, 'teff', t.language, '', t.teff,
           t.teff_status, t.teff_mark, t.law_key, t.law_language, t.tokens_seen, t.ppl
    FROM r JOIN teff t ON t.run_id = r.run_id AND t.step = r.total_steps
    UNION ALL
    SELECT r.name, r.kind, r.seed, 'embedding_similarity', a.lang_a || '–' || a.lang_b, a.matrix, a.similarity,
           NULL, NULL, NULL, NULL, NULL, NULL
    FROM r JOIN align_embeddings a ON a.run_id = r.run_id AND a.step = r.total_steps
    UNION ALL
    SELECT r.name, r.kind, r.seed, 'embedding_control', a.lang_a || '–' || a.lang_b, a.matrix, a.control,
           NULL, NULL, NULL, NULL, NULL, NULL
    FROM r JOIN align_embeddings a ON a.run_id = r.run_id AND a.step = r.total_steps
    UNION ALL
    SELECT r.name, r.kind, r.seed, 'hidden_similarity', h.lang_a || '–' || h.lang_b, CAST(h.layer AS VARCHAR),
           h.similarity, NULL, NULL, NULL, NULL, NULL, NULL
    FROM r JOIN align_hidden h ON h.run_id = r.run_id AND h.step = r.total_steps
    UNION ALL
    SELECT r.name, r.kind, r.seed, 'gradient_similarity', g.lang_a || '–' || g.lang_b, '{GRADIENT_MEAN}',
           favg(g.similarity), NULL, NULL, NULL, NULL, NULL, NULL
    FROM r JOIN align_gradients g ON g.run_id = r.run_id AND g.step = r.total_steps
    GROUP BY ALL
    UNION ALL
    SELECT r.name, r.kind, r.seed, 'gradient_similarity', g.lang_a || '–' || g.lang_b,
           regexp_replace(g.tensor, '^blocks\\.[0-9]+\\.', ''), favg(g.similarity),
           NULL, NULL, NULL, NULL, NULL, NULL
    FROM r JOIN align_gradients g ON g.run_id = r.run_id AND g.step = r.total_steps
    GROUP BY ALL
    UNION ALL
    SELECT r.name, r.kind, r.seed, 'probe_accuracy', p.language,
           p.task || '{PROBE_TRAINED_IN}' || p.train_language || ')', p.accuracy, NULL, NULL, NULL, NULL, NULL, NULL
    FROM r JOIN probes p ON p.run_id = r.run_id AND p.step = r.total_steps
    UNION ALL
    SELECT r.name, r.kind, r.seed, 'probe_chance', p.language,
           p.task || '{PROBE_TRAINED_IN}' || p.train_language || ')', p.chance, NULL, NULL, NULL, NULL, NULL, NULL
    FROM r JOIN probes p ON p.run_id = r.run_id AND p.step = r.total_steps
)
SELECT * FROM obs ORDER BY kind DESC, name, measure, language, detail, seed
"""

_BOOTSTRAPS = """
SELECT law_key, language, bootstrap FROM scaling_fits WHERE experiment = $experiment AND bootstrap IS NOT NULL
"""


@dataclass(frozen=True)
class Observation:
    """One seed's final value of one measure (TEff rows also say how to re-read it per law)."""

    name: str
    kind: str
    seed: int
    measure: str
    language: str
    detail: str
    value: float | None
    status: str | None = None  # TEff: inside | above | below | impossible
    mark: str | None = None  # TEff: as a single run prints it ('>2.10')
    law_key: str | None = None  # the law it was read on (scaling_fits.law_key)
    law_language: str | None = None
    tokens_seen: float | None = None
    ppl: float | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.name, self.measure, self.language, self.detail)


@dataclass
class SummaryRow:
    """A row of the ``summary`` table: one measure of one schedule over its seeds."""

    experiment: str
    name: str
    kind: str
    measure: str
    language: str
    detail: str
    scale: str
    mean: float | None
    lo: float | None
    hi: float | None
    n: int
    seeds: list[int]
    seed_values: list[float]
    method: str
    wide: bool
    flags: str
    text: str


# -------------------------------------------------------------------------- reading


def read_observations(fetch: Fetch, experiment: str) -> list[Observation]:
    return [Observation(**row) for row in fetch(_OBSERVATIONS, {"experiment": experiment})]


def read_bootstraps(fetch: Fetch, experiment: str) -> dict[tuple[str, str], LawBootstrap]:
    """(law key, law language) -> the law's bootstrap, for re-reading TEff under each replicate."""
    out = {}
    for row in fetch(_BOOTSTRAPS, {"experiment": experiment}):
        raw = row["bootstrap"]
        try:
            out[(row["law_key"], row["language"])] = LawBootstrap.from_dict(
                json.loads(raw) if isinstance(raw, str) else raw
            )
        except ScalingError:
            continue  # a stored bootstrap this xling cannot read: TEff shows its seeds only
    return out


def store_fetch(store) -> Fetch:
    """``Fetch`` through a ``db.store.Store`` (read-only, lock-tolerant)."""
    return lambda sql, params: store.query(sql, params).dicts()


def connection_fetch(con) -> Fetch:
    """``Fetch`` through an open DuckDB connection (inside the analysis' transaction)."""

    def fetch(sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cur = con.execute(sql, dict(params))
        columns = [d[0] for d in cur.description]
        return [dict(zip(columns, row)) for row in cur.fetchall()]

    return fetch


# -------------------------------------------------------------------------- summaries


def groups(observations: Iterable[Observation]) -> dict[tuple[str, str, str, str], list[Observation]]:
    out: dict[tuple[str, str, str, str], list[Observation]] = {}
    for o in observations:
        if o.measure in MEASURES:
            out.setdefault(o.key, []).append(o)
    return out


def law_replicates(obs: list[Observation], bootstraps: Mapping[tuple[str, str], LawBootstrap]):
    """(replicates x seeds) TEff of these observations under each replicate law, and its df;
    None when a seed's law has no bootstrap."""
    boots = [bootstraps.get((o.law_key or "", o.law_language or "")) for o in obs]
    if not obs or any(b is None or o.ppl is None or not o.tokens_seen for b, o in zip(boots, obs)):
        return None
    columns = [b.teff(o.ppl, o.tokens_seen) for b, o in zip(boots, obs)]  # type: ignore[union-attr,arg-type]
    if len({c.size for c in columns}) != 1:
        return None  # different laws with different replicate counts: not one joint draw
    return np.stack(columns, axis=1), min(b.df for b in boots)  # type: ignore[union-attr]


def _teff_flags(obs: list[Observation]) -> str:
    statuses = {o.status for o in obs}
    return ("<" if "below" in statuses and "above" not in statuses else ">" if "above" in statuses else "") + (
        "*" if "impossible" in statuses else ""
    )


def summarise_group(
    experiment: str, obs: list[Observation], bootstraps: Mapping[tuple[str, str], LawBootstrap]
) -> SummaryRow:
    """One group's ``SummaryRow`` (see the module docstring for what a group is)."""
    first = obs[0]
    m = MEASURES[first.measure]
    known = sorted((o for o in obs if o.value is not None), key=lambda o: o.seed)
    flags = _teff_flags(obs) if m.name == "teff" else ""
    base: dict[str, Any] = dict(
        experiment=experiment,
        name=first.name,
        kind=first.kind,
        measure=m.name,
        language=first.language,
        detail=first.detail,
        scale=m.scale,
        seeds=[o.seed for o in known],
        seed_values=[float(o.value) for o in known],  # type: ignore[arg-type]
        flags=flags,
    )
    if not known:
        return SummaryRow(
            **base, mean=None, lo=None, hi=None, n=0, method="none", wide=False, text="n/a (below asymptote)"
        )
    extra, method = None, ("t, log scale" if m.scale == "log" else "t")
    if m.name == "teff":
        replicates = law_replicates(known, bootstraps)
        if replicates is not None:
            extra = replicate_spread(replicates[0], replicates[1])
            method += " + law bootstrap"
    s = summarise([o.value for o in known], m.scale, extra=extra, bounds=m.bounds)  # type: ignore[misc]
    if s.n == 1:
        method = "law bootstrap (one seed)" if extra is not None else "one seed"
    return SummaryRow(
        **base, mean=s.mean, lo=s.lo, hi=s.hi, n=s.n, method=method, wide=s.wide, text=_cell(s, m, known, flags)
    )


def _cell(s: Summary, m: Measure, known: list[Observation], flags: str) -> str:
    """The report's cell. A single extrapolated TEff keeps the paper's '>edge' mark: its own
    number depends on the law's shape where no baseline was run."""
    if s.n == 1 and known[0].status in ("above", "below") and known[0].mark:
        return f"{known[0].mark} n=1"
    prefix = flags[0] if flags[:1] in ("<", ">") else ""
    return s.text(m.digits, mark=prefix) + ("*" if "*" in flags else "")


def summarise_observations(
    experiment: str, observations: list[Observation], bootstraps: Mapping[tuple[str, str], LawBootstrap]
) -> list[SummaryRow]:
    return [summarise_group(experiment, obs, bootstraps) for obs in groups(observations).values()]


def experiment_summary(store, experiment: str) -> list[SummaryRow]:
    """Every schedule's final results over seeds, computed now (the ``summary`` table's rows)."""
    fetch = store_fetch(store)
    return summarise_observations(experiment, read_observations(fetch, experiment), read_bootstraps(fetch, experiment))


def schedule_summary(store, experiment: str, name: str, measures: tuple[str, ...]) -> list[SummaryRow]:
    """One schedule's ``measures`` over seeds (the TUI's run view), by measure then language."""
    rows = [r for r in experiment_summary(store, experiment) if r.name == name and r.measure in measures]
    return sorted(rows, key=lambda r: (measures.index(r.measure), r.language, r.detail))


def store_summaries(con, experiments: list[str], tmp: Path) -> None:
    """Rewrites the ``summary`` rows of ``experiments`` (inside the caller's transaction).

    An experiment whose summary fails is left without rows rather than costing the laws
    and TEff of the same refresh: the report computes its cells afresh and shows the error."""
    from dataclasses import asdict

    fetch = connection_fetch(con)
    rows = []
    for exp in experiments:
        try:
            summaries = summarise_observations(exp, read_observations(fetch, exp), read_bootstraps(fetch, exp))
        except Exception:  # noqa: BLE001 - a derived table must never block an ingest
            continue
        rows += [asdict(r) for r in summaries]
    con.execute("DELETE FROM summary WHERE list_contains(?::VARCHAR[], experiment)", [experiments])
    if rows:
        src = ndjson_source(write_ndjson(tmp / "summary.ndjson", rows), _SUMMARY_COLUMNS)
        con.execute(f"INSERT OR REPLACE INTO summary SELECT {', '.join(_SUMMARY_COLUMNS)} FROM {src}")


_SUMMARY_COLUMNS = {
    "experiment": "VARCHAR",
    "name": "VARCHAR",
    "kind": "VARCHAR",
    "measure": "VARCHAR",
    "language": "VARCHAR",
    "detail": "VARCHAR",
    "scale": "VARCHAR",
    "mean": "DOUBLE",
    "lo": "DOUBLE",
    "hi": "DOUBLE",
    "n": "BIGINT",
    "seeds": "BIGINT[]",
    "seed_values": "DOUBLE[]",
    "method": "VARCHAR",
    "wide": "BOOLEAN",
    "flags": "VARCHAR",
    "text": "VARCHAR",
}
