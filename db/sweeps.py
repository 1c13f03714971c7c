"""A sweep's curves: final PPL and TEff of each point, per language, along each axis.

An experiment with ``sweep.AXIS = [...]`` records each run's point (its experiment file's
members; the ``member_runs`` view). Along one axis, the runs that agree on every other
axis form a line (a series); each value of the axis is a point of it, over its seeds:
the geometric mean of PPL and TEff (both ratios) with the seeds' range, so that a curve
never shows one seed's luck as the answer. ``xling report --figures`` draws these.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from db.store import Store

_FINAL = """
SELECT r.run_id, r.seed, r.point, e.language, e.ppl, t.teff, t.teff_status
FROM member_runs r
JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
LEFT JOIN teff t ON t.run_id = r.run_id AND t.language = e.language AND t.step = e.step
WHERE r.experiment = $experiment AND r.kind = 'mix' AND r.status = 'done' AND r.point IS NOT NULL
ORDER BY r.run_id, e.language
"""


@dataclass
class Estimate:
    """One measure at one point over its seeds: geometric mean and the seeds' range."""

    values: list[float] = field(default_factory=list)
    extrapolated: bool = False  # some seed's TEff was read outside its law's range

    @property
    def mean(self) -> float | None:
        good = [v for v in self.values if v and v > 0 and math.isfinite(v)]
        return math.exp(sum(map(math.log, good)) / len(good)) if good else None

    @property
    def low(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def high(self) -> float | None:
        return max(self.values) if self.values else None


@dataclass
class CurvePoint:
    x: Any  # the axis value
    ppl: Estimate = field(default_factory=Estimate)
    teff: Estimate = field(default_factory=Estimate)


@dataclass
class Curve:
    """One line along an axis: one language, the other axes fixed (``series``)."""

    axis: str
    language: str
    series: str  # e.g. 'model=cpu-xs' ('' when the axis is the only one)
    points: list[CurvePoint] = field(default_factory=list)


def axis_curves(store: Store, experiment: str) -> dict[str, list[Curve]]:
    """For each axis of the experiment's sweep, its curves (empty when it has no sweep points)."""
    rows = store.query(_FINAL, {"experiment": experiment}).rows
    runs = [(json.loads(point), seed, lang, ppl, teff, status) for _, seed, point, lang, ppl, teff, status in rows]
    runs = [run for run in runs if isinstance(run[0], dict) and run[0]]  # a plain experiment has no points
    axes = list(dict.fromkeys(a for point, *_ in runs for a in point))
    return {axis: _curves(axis, runs) for axis in axes}


def _curves(axis: str, runs: list[tuple]) -> list[Curve]:
    curves: dict[tuple[str, str], Curve] = {}
    for point, _seed, lang, ppl, teff, status in runs:
        if axis not in point:
            continue
        series = " ".join(f"{a}={_show(v)}" for a, v in point.items() if a != axis)
        curve = curves.setdefault((series, lang), Curve(axis, lang, series))
        at = next((p for p in curve.points if p.x == point[axis]), None)
        if at is None:
            at = CurvePoint(point[axis])
            curve.points.append(at)
        if ppl is not None:
            at.ppl.values.append(ppl)
        if teff is not None:
            at.teff.values.append(teff)
            at.teff.extrapolated |= status not in (None, "inside")
    for curve in curves.values():  # numbers in order; names (model presets) as the sweep lists them
        if all(isinstance(p.x, int | float) for p in curve.points):
            curve.points.sort(key=lambda p: p.x)
    return sorted(curves.values(), key=lambda c: (c.series, c.language))


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
