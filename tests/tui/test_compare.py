"""The compare screen: curves by step, tokens and exact tokens in the language; stable colours;
seeds as a mean with a band; a pinned schedule on top; the point inspector; the legend with
paired differences; xling report's tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from db.analysis import tokens_seen
from db.compare_curves import Curve, RunCurves, compare_curves
from db.store import Store
from engine.analysis.uncertainty import paired_difference
from tests.tui.fixture_db import screen_app, settle
from xling_tui import overlay
from xling_tui.overlay import View
from xling_tui.screens.compare import CompareScreen, fetch_compare

PICKED = ["50/50", "90/10", "90→10 / 10→90"]


def _ids(db: Path, names: list[str]) -> list[str]:
    by_name = dict(Store(db).query("SELECT name, run_id FROM runs").rows)
    return [by_name[n] for n in names]


def _spec(db: Path, run_id: str) -> dict:
    import json

    return json.loads(Store(db).query("SELECT spec FROM runs WHERE run_id = ?", [run_id]).rows[0][0])


# -- data -----------------------------------------------------------------------------------


def test_curves_carry_exact_tokens_seen_in_their_language(fixture_db):
    ids = _ids(fixture_db, PICKED)
    runs = compare_curves(Store(fixture_db), ids)
    rare = runs[ids[1]].curves[("eval", "EN2")]
    assert list(rare.step) == [0, 150, 300, 450, 600]
    assert list(rare.tokens) == [s * 32 * 128 for s in rare.step]
    exact = tokens_seen(_spec(fixture_db, ids[1]))[1]  # EN2 is the schedule's second language
    assert list(rare.lang_tokens) == [float(exact[s]) for s in rare.step]
    assert rare.lang_tokens[-1] == 245_760  # 10% of 2.46M, to the token
    assert runs[ids[1]].shares == {"EN1": "90%", "EN2": "10%"}
    train = runs[ids[0]].curves[("train", "EN1")]
    assert len(train.step) == 60 and train.step[-1] == 600


def test_fetch_has_curves_and_the_experiments_report(fixture_db):
    ids = _ids(fixture_db, PICKED)
    data = fetch_compare(fixture_db, ids + ["0123456789ab"])
    assert data.error == "not in the database: 0123456789ab"
    assert sorted(r.name for r in data.runs.values()) == sorted(PICKED)
    (report,) = data.reports
    main = report.tables[0]
    rows = {r[0]: dict(zip(main.columns, r)) for r in main.rows}
    assert rows["90/10"]["TEff EN2"] == "3.22 [2.87, 3.61] n=1" and rows["90/10"]["p(EN2)"] == "10%"
    assert "90→10 / 10→90" not in rows  # still running: the report has finished runs only
    (paired,) = data.comparisons  # the finished picked schedules, the first against the other
    assert paired.comparison.a == "50/50" and paired.comparison.b == "90/10"
    teff = next(r for r in paired.comparison.rows if (r.measure, r.language) == ("teff", "EN2"))
    assert teff.change.startswith("-59") and teff.verdict == "n=1: no verdict"


# -- what is drawn (no screen) --------------------------------------------------------------


def _curve(step, ppl, per_step=100, share=0.5) -> Curve:
    step = np.asarray(step)
    return Curve(step, step * per_step, step * per_step * share, np.asarray(ppl, dtype=float))


def _runs() -> dict[str, RunCurves]:
    """Schedule A over three seeds, B over two: eval PPL at steps 0, 10, 20."""

    def run(rid, name, seed, ppls, share):
        r = RunCurves(rid, "exp", name, "mix", seed, "done", ["L1", "L2"], {"L1": "50%", "L2": "50%"})
        r.curves[("eval", "L1")] = _curve([0, 10, 20], ppls, share=share)
        return r

    return {
        "a0": run("a0", "A", 0, [100, 50, 20], 0.5),
        "a1": run("a1", "A", 1, [100, 60, 25], 0.5),
        "a2": run("a2", "A", 2, [100, 40, 16], 0.5),
        "b0": run("b0", "B", 0, [100, 80, 40], 0.9),
        "b1": run("b1", "B", 1, [100, 90, 50], 0.9),
    }


def test_seeds_are_one_mean_line_with_a_min_max_band():
    runs = _runs()
    groups = overlay.groups_of(runs, list(runs))
    assert [(g.label, g.seeds) for g in groups] == [("A", (0, 1, 2)), ("B", (0, 1))]
    shown = overlay.build(runs, groups, overlay.colours(groups), View(language="L1"))
    a = shown.lines[0]
    assert a.n_seeds == 3 and a.seed is None
    assert a.y[2] == pytest.approx((20 * 25 * 16) ** (1 / 3))  # geometric mean
    assert list(a.lo) == [100, 40, 16] and list(a.hi) == [100, 60, 25]
    assert len(shown.figure.series) == 6  # per group: band low, band high, mean
    each = overlay.build(runs, groups, overlay.colours(groups), View(language="L1", mean_seeds=False))
    assert [(line.group.label, line.seed) for line in each.lines] == [("A", 0), ("A", 1), ("A", 2), ("B", 0), ("B", 1)]


def test_x_axis_switch_changes_the_plotted_data():
    runs = _runs()
    groups = overlay.groups_of(runs, list(runs))
    colour = overlay.colours(groups)
    by_axis = {
        axis: overlay.build(runs, groups, colour, View(language="L1", axis=axis)).lines[1].x
        for axis in ("step", "tokens", "lang_tokens")
    }
    assert list(by_axis["step"]) == [0, 10, 20]
    assert list(by_axis["tokens"]) == [0, 1000, 2000]
    assert list(by_axis["lang_tokens"]) == [0, 900, 1800]  # B gives L1 90% of its tokens


def test_pinned_group_is_drawn_last_and_colours_stay():
    runs = _runs()
    groups = overlay.groups_of(runs, list(runs))
    colour = overlay.colours(groups)
    first = overlay.build(runs, groups, colour, View(language="L1"))
    pinned = overlay.build(runs, groups, colour, View(language="L1", pinned=("exp", "A"), axis="step"))
    assert [line.group.label for line in first.lines] == ["A", "B"]
    assert [line.group.label for line in pinned.lines] == ["B", "A"]
    assert pinned.figure.series[-1].style == f"bold {colour[('exp', 'A')]}"
    assert {line.group.label: line.colour for line in first.lines} == {
        line.group.label: line.colour for line in pinned.lines
    }


def test_inspector_reads_each_curve_and_never_extrapolates():
    x, y = np.array([0.0, 10.0, 20.0]), np.array([100.0, 50.0, 20.0])
    assert overlay.value_at(x, y, 15.0) == pytest.approx(35.0)
    assert overlay.value_at(x, y, 25.0) is None and overlay.value_at(x, y, -1.0) is None
    stops = [0.0, 10.0, 20.0]
    assert overlay.step_cursor(stops, None, 1) == 20.0
    assert overlay.step_cursor(stops, 20.0, -1) == 10.0 and overlay.step_cursor(stops, 0.0, -1) == 0.0
    assert overlay.step_cursor(stops, 10.0, 1) == 20.0 and overlay.step_cursor(stops, 20.0, 1) == 20.0


def test_legend_finals_over_seeds_and_paired_differences():
    runs = _runs()
    groups = overlay.groups_of(runs, list(runs))
    view = View(language="L1", pinned=("exp", "A"), cursor=10.0, axis="step")
    shown = overlay.build(runs, groups, overlay.colours(groups), view)
    a, b = overlay.legend(runs, groups, overlay.colours(groups), view, shown)
    assert a.pinned and a.delta["L1"] is None
    mean, lo, hi, step = a.final["L1"]
    assert (lo, hi, step) == (16, 25, 20) and mean == pytest.approx((20 * 25 * 16) ** (1 / 3))
    delta = b.delta["L1"]  # seeds 0 and 1 paired: 40/20 and 50/25, both +100%
    assert delta == paired_difference({0: 40, 1: 50}, {0: 20, 1: 25}, scale="log")  # as xling report --compare
    assert delta.n == 2 and delta.text(1) == "+100.0% [+100.0%, +100.0%]" and delta.direction() == 1
    pin_b = overlay.legend(runs, groups, overlay.colours(groups), View(language="L1", pinned=("exp", "B")), shown)[0]
    assert pin_b.delta["L1"].n == 2 and pin_b.delta["L1"].text(1) == "-50.0% [-50.0%, -50.0%]"  # A's seed 2: no pair
    assert b.at_cursor["L1"] == pytest.approx(np.exp(np.log([80, 90]).mean()))


# -- the screen -----------------------------------------------------------------------------


def _app(db: Path, names: list[str] = PICKED):
    ids = _ids(db, names)
    return screen_app(db.with_name("experiments.toml"), db, lambda: CompareScreen(ids))


@pytest.mark.asyncio
async def test_keys_switch_axis_language_pin_and_inspect(fixture_db):
    app = _app(fixture_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        colours = dict(screen.colours)
        rare = next(line for line in screen.shown.lines if line.group.label == "90/10" and line.language == "EN2")
        assert rare.x[-1] == 245_760  # tokens seen in EN2
        await pilot.press("x")
        assert screen.view.axis == "tokens"
        rare = next(line for line in screen.shown.lines if line.group.label == "90/10" and line.language == "EN2")
        assert rare.x[-1] == 2_457_600
        await pilot.press("x")
        rare = next(line for line in screen.shown.lines if line.group.label == "90/10" and line.language == "EN2")
        assert rare.x[-1] == 600 and screen.shown.figure.x_label == "step"
        await pilot.press("l")
        assert screen.view.language == "EN1" and {line.language for line in screen.shown.lines} == {"EN1"}
        await pilot.press("down", "p")  # pin 90/10 (the legend's second row)
        assert screen.view.pinned == ("table1", "90/10")
        assert screen.shown.lines[-1].group.label == "90/10"
        await pilot.press("x", "y", "l")  # still on top after other toggles
        assert screen.shown.lines[-1].group.label == "90/10" and not screen.view.log_y
        assert screen.colours == colours
        await pilot.press("i")
        assert screen.view.cursor is not None and screen.shown.figure.vlines == [screen.view.cursor]
        at = screen.view.cursor
        await pilot.press("left")
        assert screen.view.cursor < at
        legend = screen.query_one("#compare-legend")
        assert any(str(c.label).startswith("@cursor") for c in legend.columns.values())
        await pilot.press("i")
        assert screen.view.cursor is None


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", ["curves", "pinned-inspector", "report"])
def test_compare_snapshot(snap_compare, fixture_db, size, state):
    keys = {"curves": [], "pinned-inspector": ["down", "p", "i", "left"], "report": ["2"]}[state]

    async def show(pilot):
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    assert snap_compare(_app(fixture_db), terminal_size=size, run_before=show)


def test_many_curves_keep_only_the_pinned_band():
    from db.compare_curves import RunCurves

    runs = {}
    for g in range(8):
        for seed in (0, 1):
            r = RunCurves(f"r{g}{seed}", "exp", f"S{g}", "mix", seed, "done", ["L1", "L2"], {})
            for lang in ("L1", "L2"):
                r.curves[("eval", lang)] = _curve([0, 10, 20], [100, 50 + g + seed, 20 + g])
            runs[r.run_id] = r
    groups = overlay.groups_of(runs, list(runs))
    colour = overlay.colours(groups)
    calm = overlay.build(runs, groups[:3], colour, View())
    assert not overlay.crowded(calm)
    assert sum(s.marker == "·" for s in calm.figure.series) == 2 * 6  # every mean line has its band
    busy = overlay.build(runs, groups, colour, View(pinned=("exp", "S3")))
    assert overlay.crowded(busy) and len(busy.lines) == 16
    bands = [s for s in busy.figure.series if s.marker == "·"]
    assert len(bands) == 4 and {s.style for s in bands} == {f"dim {colour[('exp', 'S3')]}"}
    assert not any(s.marker in overlay.MARKERS for s in busy.figure.series)  # no language markers either


@pytest.mark.asyncio
async def test_nothing_new_is_not_redrawn(fixture_db):
    from xling_tui.widgets.plots import XPlot

    app = _app(fixture_db, ["50/50", "90/10"])  # finished runs: every read is the same
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        plot = app.screen.query_one(XPlot)
        draws, shown = plot.draws, app.screen.shown
        for _ in range(2):
            app.screen.action_reload()
            await settle(pilot)
        plot._flush()
        assert plot.draws == draws and app.screen.shown is shown


@pytest.mark.asyncio
async def test_the_legend_is_rebuilt_only_when_its_cells_change(fixture_db):
    """An x-axis switch or the log toggle moves the curves, not their final values: the
    legend table is left as it is; the inspector adds columns and rebuilds it."""
    app = _app(fixture_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        legend = app.screen.query_one("#compare-legend")
        rebuilt = []
        clear = legend.clear

        def counted(*args, **kwargs):
            rebuilt.append(1)
            return clear(*args, **kwargs)

        legend.clear = counted
        before = [[str(c) for c in legend.get_row_at(i)] for i in range(legend.row_count)]
        await pilot.press("x", "x", "y")
        await settle(pilot)
        assert rebuilt == []
        assert [[str(c) for c in legend.get_row_at(i)] for i in range(legend.row_count)] == before
        await pilot.press("i")
        await settle(pilot)
        assert rebuilt == [1] and any(str(c.label).startswith("@cursor") for c in legend.columns.values())
