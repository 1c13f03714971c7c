"""What the compare view draws, decided without a screen: series, colours, bands, cursor.

Runs of one schedule (same experiment and name: one spec but the seed) form a group.
A group keeps one colour for the life of the view, whatever is shown, so a run is
recognised across every toggle. Its seeds are drawn as their mean (geometric: PPL is
compared as a ratio) with the min–max band around it, or one line per seed. The x axis
is the step, the total training tokens, or the exact tokens seen in the curve's own
language (``db.compare_curves``); the pinned group is drawn last, on top. The point
inspector reads each drawn curve at a cursor x (interpolated between its points, never
beyond its ends). ``xling_tui.screens.compare`` renders what these functions return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from db.compare_curves import RunCurves
from engine.analysis.uncertainty import PairedDifference, paired_difference
from xling_tui.widgets.plots import MANY_LINES, PALETTE, Figure, Series, human

ALL = "all languages"
AXES = {"lang_tokens": "tokens seen in the language", "tokens": "training tokens", "step": "step"}
METRIC_LABEL = {"eval": "held-out PPL", "train": "training PPL"}
MARKERS = ("o", "x", "+", "*", "#")  # one per language when several are drawn


@dataclass(frozen=True)
class Group:
    """The runs of one schedule: same experiment and name, one per seed."""

    key: tuple[str | None, str]  # (experiment, name)
    run_ids: tuple[str, ...]
    seeds: tuple[int | None, ...]
    shares: dict[str, str]
    languages: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.key[1]

    def schedule(self) -> str:
        """'EN1 90% · EN2 10%': the legend's schedule column."""
        return " · ".join(f"{lang} {self.shares[lang]}" for lang in self.languages if lang in self.shares)


@dataclass(frozen=True)
class View:
    """What the user chose to see; every toggle makes a new View."""

    metric: str = "eval"
    language: str = ALL
    axis: str = "lang_tokens"
    log_y: bool = True
    mean_seeds: bool = True
    pinned: tuple[str | None, str] | None = None
    cursor: float | None = None  # x of the point inspector; None: off

    def with_(self, **changes) -> View:
        return replace(self, **changes)


@dataclass
class Line:
    """One drawn curve: its group, language, which seed (None: the mean of several), points."""

    group: Group
    language: str
    seed: int | None
    n_seeds: int
    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray | None = None  # min–max band over seeds
    hi: np.ndarray | None = None
    colour: str = "white"


@dataclass
class Overlay:
    """The lines to draw, in drawing order (the pinned group last), and their figure."""

    lines: list[Line] = field(default_factory=list)
    figure: Figure = field(default_factory=Figure)


def groups_of(runs: dict[str, RunCurves], order: Sequence[str]) -> list[Group]:
    """Groups in the order their first run appears in ``order``."""
    members: dict[tuple[str | None, str], list[RunCurves]] = {}
    for run_id in order:
        run = runs.get(run_id)
        if run is not None:
            members.setdefault((run.experiment, run.name), []).append(run)
    out = []
    for key, rs in members.items():
        rs.sort(key=lambda r: (r.seed is None, r.seed))
        out.append(
            Group(key, tuple(r.run_id for r in rs), tuple(r.seed for r in rs), rs[0].shares, tuple(rs[0].languages))
        )
    return out


def colours(groups: Sequence[Group]) -> dict[tuple[str | None, str], str]:
    """A colour per group, by its place in the list: fixed once the view opens."""
    return {g.key: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}


def languages(runs: dict[str, RunCurves], metric: str) -> list[str]:
    return sorted({lang for r in runs.values() for (m, lang) in r.curves if m == metric})


def build(runs: dict[str, RunCurves], groups: Sequence[Group], colour: dict, view: View) -> Overlay:
    """The lines and the figure for ``view``."""
    shown = languages(runs, view.metric) if view.language == ALL else [view.language]
    lines: list[Line] = []
    for group in groups:
        for lang in shown:
            lines.extend(_group_lines(runs, group, lang, view, colour.get(group.key, "white")))
    lines.sort(key=lambda line: line.group.key == view.pinned)  # stable: the pinned group goes last, on top
    return Overlay(lines, _figure(lines, shown, view))


def _group_lines(runs: dict[str, RunCurves], group: Group, lang: str, view: View, colour: str) -> list[Line]:
    curves = [
        (runs[rid].seed, c)
        for rid in group.run_ids
        if (c := runs[rid].curves.get((view.metric, lang))) is not None and len(c.step)
    ]
    if not curves:
        return []
    if len(curves) == 1 or not view.mean_seeds:
        return [Line(group, lang, seed, 1, c.x(view.axis).astype(float), c.ppl, colour=colour) for seed, c in curves]
    common = common_steps([c.step for _, c in curves])
    if not len(common):
        return [Line(group, lang, seed, 1, c.x(view.axis).astype(float), c.ppl, colour=colour) for seed, c in curves]
    xs, ys = [], []
    for _, c in curves:
        index = np.searchsorted(c.step, common)
        xs.append(c.x(view.axis)[index].astype(float))
        ys.append(c.ppl[index])
    y = np.vstack(ys)
    mean = np.exp(np.log(y).mean(axis=0))  # PPL is compared as a ratio: the geometric mean
    x = np.vstack(xs).mean(axis=0)  # tokens in a language differ a little between seeds
    return [Line(group, lang, None, len(curves), x, mean, y.min(axis=0), y.max(axis=0), colour)]


def common_steps(steps: Sequence[np.ndarray]) -> np.ndarray:
    """The steps every curve has. Seeds log at the same steps unless one stopped early,
    so the equal case is checked first: it redraws a hundred runs' curves without sorting."""
    first = steps[0]
    if all(np.array_equal(first, other) for other in steps[1:]):
        return first
    common = first
    for other in steps[1:]:
        common = np.intersect1d(common, other, assume_unique=True)  # a curve's steps are unique
    return common


def _figure(lines: list[Line], shown: list[str], view: View) -> Figure:
    axis = AXES[view.axis]
    if view.axis == "lang_tokens":
        axis = f"tokens seen in {shown[0]}" if len(shown) == 1 else "tokens seen in each curve's language"
    fig = Figure(log_y=view.log_y, x_label=axis, y_label=METRIC_LABEL[view.metric], legend=False)
    crowded = len(lines) > MANY_LINES  # bands and markers only where they can still be told apart
    several = len(shown) > 1
    for line in lines:
        pinned = line.group.key == view.pinned
        style = f"bold {line.colour}" if pinned else line.colour
        if line.lo is not None and line.hi is not None and (pinned or not crowded):
            for edge in (line.lo, line.hi):  # the band's edges, dotted: cheap to draw, light to read
                fig.series.append(Series(None, list(line.x), list(edge), f"dim {line.colour}", marker="·"))
        fig.series.append(Series(None, list(line.x), list(line.y), style))
        if several and view.metric == "eval" and not crowded:  # which language a line is: its marker
            marker = MARKERS[shown.index(line.language) % len(MARKERS)]
            fig.series.append(Series(None, list(line.x), list(line.y), style, marker=marker))
    if view.cursor is not None:
        fig.vlines.append(view.cursor)
    return fig


def crowded(overlay: Overlay) -> bool:
    """Too many curves for every band and marker: only the pinned schedule's band is drawn."""
    return len(overlay.lines) > MANY_LINES


# -- the point inspector --------------------------------------------------------------------


def cursor_stops(overlay: Overlay) -> list[float]:
    """Where the cursor may stand: every x a drawn line has a point at."""
    xs = np.unique(np.concatenate([line.x[np.isfinite(line.x)] for line in overlay.lines] or [np.array([])]))
    return [float(x) for x in xs]


def value_at(x: np.ndarray, y: np.ndarray, at: float) -> float | None:
    """The line's value at ``at``: interpolated between its neighbouring points, None
    outside its range (a curve is never extended beyond what was measured)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if not len(x) or at < x[0] or at > x[-1]:
        return None
    return float(np.interp(at, x, y))


def step_cursor(stops: list[float], current: float | None, direction: int) -> float | None:
    """The next stop left (-1) or right (+1) of ``current``; the last stop to start with."""
    if not stops:
        return None
    if current is None:
        return stops[-1]
    index = int(np.searchsorted(stops, current))
    if direction < 0:
        return stops[max(index - 1, 0)]
    if index < len(stops) and stops[index] == current:
        index += 1
    return stops[min(index, len(stops) - 1)]


def axis_value(view: View, x: float) -> str:
    return f"step {x:.0f}" if view.axis == "step" else human(x)


# -- the legend with the final values and the paired differences -------------------------


@dataclass
class LegendRow:
    """One group: its final value per language (mean and min–max over seeds, at the last
    step all its seeds reached), the cursor reading, and its difference from the pinned group."""

    group: Group
    colour: str
    pinned: bool
    final: dict[str, tuple[float, float, float, int] | None]  # lang -> (mean, lo, hi, step)
    at_cursor: dict[str, float | None]
    delta: dict[str, PairedDifference | None]  # lang -> log(PPL / pinned PPL), seed by seed, with its interval


def legend(
    runs: dict[str, RunCurves], groups: Sequence[Group], colour: dict, view: View, overlay: Overlay
) -> list[LegendRow]:
    shown = languages(runs, view.metric) if view.language == ALL else [view.language]
    pinned = next((g for g in groups if g.key == view.pinned), None)
    rows = []
    for group in groups:
        final = {lang: _final(runs, group, lang, view.metric) for lang in shown}
        at_cursor: dict[str, float | None] = {}
        if view.cursor is not None:
            for line in overlay.lines:
                if line.group.key == group.key and (line.seed is None or line.n_seeds == 1):
                    at_cursor.setdefault(line.language, value_at(line.x, line.y, view.cursor))
        delta = {
            lang: _paired(runs, group, pinned, lang, view.metric) if pinned and pinned.key != group.key else None
            for lang in shown
        }
        rows.append(LegendRow(group, colour.get(group.key, "white"), group.key == view.pinned, final, at_cursor, delta))
    return rows


def _last_common(
    runs: dict[str, RunCurves], run_ids: Sequence[str], lang: str, metric: str
) -> dict[int | None, tuple[int, float]]:
    """seed -> (step, PPL) at the last step every one of ``run_ids`` reached."""
    found = {runs[r].seed: runs[r].curves.get((metric, lang)) for r in run_ids}
    curves = {s: c for s, c in found.items() if c is not None and len(c.step)}
    if not curves:
        return {}
    common = common_steps([c.step for c in curves.values()])
    if not len(common):
        return {}
    last = int(common[-1])
    return {s: (last, float(c.ppl[int(np.searchsorted(c.step, last))])) for s, c in curves.items()}


def _final(runs: dict[str, RunCurves], group: Group, lang: str, metric: str) -> tuple[float, float, float, int] | None:
    values = _last_common(runs, group.run_ids, lang, metric)
    if not values:
        return None
    ppl = np.array([v for _, v in values.values()])
    step = next(iter(values.values()))[0]
    return float(np.exp(np.log(ppl).mean())), float(ppl.min()), float(ppl.max()), step


def _paired(runs: dict[str, RunCurves], group: Group, pinned: Group, lang: str, metric: str) -> PairedDifference | None:
    """PPL of ``group`` against the pinned group, seed by seed (at the last step both
    reached), as ``xling report --compare`` takes it: the mean log ratio with its 95% t
    interval (``engine.analysis.uncertainty.paired_difference``; none from one pair)."""
    mine = _last_common(runs, group.run_ids, lang, metric)
    theirs = _last_common(runs, pinned.run_ids, lang, metric)
    seeds = [s for s in set(mine) & set(theirs) if mine[s][0] == theirs[s][0]]
    if not seeds:
        return None
    key = {s: -1 if s is None else s for s in seeds}  # a run without a seed pairs with its like
    return paired_difference({key[s]: mine[s][1] for s in seeds}, {key[s]: theirs[s][1] for s in seeds}, scale="log")
