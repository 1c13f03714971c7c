"""What the TUI's experiment view reads: the experiment's runs and where each one is,
its sweep axes, and the final PPL and TEff of each schedule along them.

The paper-style table itself is ``xling report``'s (``xling_tui.report.build_report``)
and the law with its points is ``db.run_panels.teff_panel``; this module adds what they
do not hold: every run of the experiment's current definition with its status and
progress (so the table can show which rows are still to come), and the axes a sweep
varies. An axis is a setting of the spec (model, data, training, evaluation) that
differs between the experiment's mixes; with none (every experiment without a sweep)
there is nothing to plot along, and the view says so by not offering the panel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from db.store import Store

_RUNS = """
SELECT r.run_id, r.name, r.kind, r.seed, coalesce(r.status, 'queued') AS status, r.step, r.total_steps,
       r.total_tokens, r.model, r.spec, r.message
FROM member_runs r WHERE r.experiment = $experiment
ORDER BY r.kind DESC, r.total_tokens DESC, r.name, r.seed
"""

_FINALS = """
SELECT r.run_id, e.language, e.ppl, t.teff, t.teff_mark
FROM member_runs r
JOIN evals e ON e.run_id = r.run_id AND e.step = r.total_steps
LEFT JOIN teff t ON t.run_id = r.run_id AND t.language = e.language AND t.step = e.step
WHERE r.experiment = $experiment AND r.status = 'done'
ORDER BY r.run_id, e.language  -- languages in one order: a sweep's markers stay with their language
"""

_FINGERPRINT = """
SELECT list((run_id, status, step) ORDER BY run_id),
       (SELECT max(updated) FROM scaling_fits WHERE experiment = $experiment)
FROM member_runs WHERE experiment = $experiment
"""

# Settings that tell runs apart without being an axis of a sweep.
_NOT_AXES = {"experiment", "name", "kind", "seed", "run_id", "schedule", "languages", "fraction", "total_steps",
             "total_tokens", "budget_tokens"}  # fmt: skip


@dataclass
class ExperimentRun:
    run_id: str
    name: str
    kind: str | None
    seed: int | None
    status: str
    step: int | None
    total_steps: int | None
    total_tokens: int | None
    model: str | None
    spec: dict[str, Any]
    message: str | None

    @property
    def progress(self) -> float | None:
        if self.status == "done":
            return 1.0
        if not self.total_steps:
            return None
        return min(max((self.step or 0) / self.total_steps, 0.0), 1.0)


@dataclass
class SweepPoint:
    """One schedule at one value of an axis: its final PPL and TEff per language over seeds."""

    value: Any
    schedule: str  # the schedule's name with the axis left out
    ppl: dict[str, list[float]] = field(default_factory=dict)  # language -> one value per finished seed
    teff: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Sweep:
    axis: str  # dotted path in the spec, e.g. 'data.anchors'
    points: list[SweepPoint] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return all(isinstance(p.value, int | float) and not isinstance(p.value, bool) for p in self.points)


def experiment_runs(store: Store, experiment: str) -> list[ExperimentRun]:
    """Every run of the experiment's current definition, baselines first."""
    out = []
    for row in store.query(_RUNS, {"experiment": experiment}).rows:
        spec = json.loads(row[9]) if isinstance(row[9], str) else (row[9] or {})
        run_id, name, kind, seed, status, step, total_steps, total_tokens, model = row[:9]
        out.append(
            ExperimentRun(run_id, name, kind, seed, status, step, total_steps, total_tokens, model, spec, row[10])
        )
    return out


def fingerprint(store: Store, experiment: str) -> tuple:
    """Changes whenever a run of the experiment moves or its law is refitted: a poll with
    the same fingerprint has nothing new to show."""
    rows = store.query(_FINGERPRINT, {"experiment": experiment}).rows
    return tuple(json.dumps(v, default=str) for v in rows[0]) if rows else ()


def sweep_axes(runs: Iterable[ExperimentRun]) -> list[str]:
    """Spec settings whose value differs between the experiment's mixes."""
    values: dict[str, set[str]] = {}
    for run in runs:
        if run.kind != "mix":
            continue
        for path, value in _flatten(run.spec):
            if path.split(".")[0] not in _NOT_AXES:
                values.setdefault(path, set()).add(json.dumps(value, sort_keys=True))
    return sorted(path for path, seen in values.items() if len(seen) > 1)


def sweeps(store: Store, experiment: str, runs: list[ExperimentRun]) -> list[Sweep]:
    """For each axis, each schedule's final PPL and TEff per language at each value.

    An experiment that declares its sweep (``sweep.ratio`` ...) is drawn along its own axes,
    the points its runs record (``db.sweeps``): the ratio and the budget are axes there,
    not settings that merely differ. Any other experiment along the settings its mixes differ in.
    """
    declared = declared_sweeps(store, experiment)
    if declared:
        return declared
    axes = sweep_axes(runs)
    if not axes:
        return []
    finals: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for run_id, lang, ppl, teff, _mark in store.query(_FINALS, {"experiment": experiment}).rows:
        finals.setdefault(run_id, {})[lang] = (ppl, teff)
    out = []
    for axis in axes:
        points: dict[tuple[str, str], SweepPoint] = {}
        for run in runs:
            if run.kind != "mix" or run.run_id not in finals:
                continue
            value = _get(run.spec, axis)
            schedule = _series_name(run, axis, axes)
            point = points.setdefault((json.dumps(value, sort_keys=True), schedule), SweepPoint(value, schedule))
            for lang, (ppl, teff) in finals[run.run_id].items():
                if ppl is not None and math.isfinite(ppl):
                    point.ppl.setdefault(lang, []).append(float(ppl))
                if teff is not None and math.isfinite(teff):
                    point.teff.setdefault(lang, []).append(float(teff))
        sweep = Sweep(axis, sorted(points.values(), key=lambda p: (p.schedule, _sort_key(p.value))))
        out.append(sweep)
    return out


def declared_sweeps(store: Store, experiment: str) -> list[Sweep]:
    """The experiment's own sweep axes with each point's seeds, as ``xling report --figures`` draws them."""
    from db.sweeps import axis_curves

    out = []
    for axis, curves in axis_curves(store, experiment).items():
        points: dict[tuple[str, str], SweepPoint] = {}
        for curve in curves:
            for cp in curve.points:
                key = (json.dumps(cp.x, sort_keys=True), curve.series)
                point = points.setdefault(key, SweepPoint(cp.x, curve.series))
                point.ppl.setdefault(curve.language, []).extend(v for v in cp.ppl.values if math.isfinite(v))
                point.teff.setdefault(curve.language, []).extend(v for v in cp.teff.values if math.isfinite(v))
        if len({p.value for p in points.values()}) > 1:  # one value is no curve
            out.append(Sweep(axis, sorted(points.values(), key=lambda p: (p.schedule, _sort_key(p.value)))))
    return out


def _flatten(spec: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in spec.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key != "schedule":
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _get(spec: dict[str, Any], path: str) -> Any:
    value: Any = spec
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _series_name(run: ExperimentRun, axis: str, axes: list[str]) -> str:
    """The line a run belongs to along ``axis``: its schedule (as its languages' shares)
    and its values of the other axes, so only ``axis`` varies along a line."""
    from engine.config.schedule import Schedule

    try:
        schedule = Schedule.from_dict(run.spec["schedule"])
        name = " / ".join(f"{lang} {schedule.share_label(lang)}" for lang in schedule.languages)
    except (KeyError, TypeError, ValueError):
        name = run.name
    others = [f"{a}={_get(run.spec, a)}" for a in axes if a != axis]
    return " · ".join([name, *others])


def _sort_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, int | float) and not isinstance(value, bool) else (1, 0, str(value))
