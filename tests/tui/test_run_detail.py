"""The run screen and what feeds it: db.run_panels on the fixture database, the plot widget's
log axes, decimation and redraw throttle, and snapshots of every tab."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from db import run_panels
from db.store import Store
from tests.tui.fixture_db import BASELINE_WOBBLE, FAILED_MESSAGE, GRAD_SIM, HIDDEN_SIM, TEFF, screen_app, settle
from xling_tui.screens.run_detail import RunScreen, curves_figure, teff_figure
from xling_tui.widgets.plots import Figure, Log10Formatter, Series, XPlot, decimate, human


def _ids(db: Path) -> dict[str, str]:
    return dict(Store(db).query("SELECT name, run_id FROM runs").rows)


# -- db.run_panels ------------------------------------------------------------------------


def test_run_info_of_running_and_failed_runs(fixture_db):
    ids = _ids(fixture_db)
    store = Store(fixture_db)
    running = run_panels.run_info(store, ids["90→10 / 10→90"])
    assert (running.status, running.step, running.total_steps, running.languages) == (
        "running",
        360,
        600,
        ["EN1", "EN2"],
    )
    failed = run_panels.run_info(store, ids["4-stage"])
    assert (failed.status, failed.message) == ("failed", FAILED_MESSAGE)
    assert run_panels.run_info(store, "nope") is None


def test_training_curves_are_cut_to_the_asked_points_keeping_the_last(fixture_db):
    store = Store(fixture_db)
    rid = _ids(fixture_db)["90/10"]
    full = run_panels.curves(store, rid, max_points=10_000)
    cut = run_panels.curves(store, rid, max_points=20)
    assert [c.label for c in full.train] == ["EN1", "EN2"] and len(full.train[0].x) == 60
    assert 20 <= len(cut.train[0].x) <= 21 and cut.train[0].x[-1] == full.train[0].x[-1] == 2_457_600
    evals = {c.label: c for c in cut.evals}
    assert evals["EN2"].x == [0.0, 614_400.0, 1_228_800.0, 1_843_200.0, 2_457_600.0]
    assert evals["EN2"].y[-1] == pytest.approx(110 * (3.2 * 245_760 / 2_457_600) ** -0.45, rel=1e-9)


def test_teff_panel_has_the_law_the_baselines_and_every_mix_at_its_mlte(fixture_db):
    panel = run_panels.teff_panel(Store(fixture_db), "table1", "cpu-xs", "EN1")
    assert panel.law_error is None and panel.law_label.startswith("power law cpu-xs/EN1: PPL = 110")
    assert [t for t, _ in panel.baselines] == [245_760, 614_400, 1_228_800, 2_457_600]
    assert panel.baselines[-1][1] == pytest.approx(110.0 * BASELINE_WOBBLE[1.0])
    by = {(p.run_name, p.language): p for p in panel.points}
    assert set(by) == {(n, l) for n in TEFF for l in ("EN1", "EN2")}
    rare = by[("90/10", "EN2")]
    assert rare.step == 600 and rare.teff == pytest.approx(TEFF["90/10"]["EN2"], rel=0.02)
    assert rare.mlte == pytest.approx(rare.teff * rare.tokens_seen)
    assert by[("90→10 / 10→90", "EN1")].step == 300  # the running run's latest evaluation
    tokens = [t for t, _ in panel.curve]
    assert tokens[0] <= min(p.tokens_seen for p in panel.points) and tokens[-1] >= 2_457_600


def test_teff_carries_the_law_interval_and_the_schedule_over_seeds(fixture_db):
    from xling_tui.screens.run_detail import teff_text

    ids = _ids(fixture_db)
    panel = run_panels.teff_panel(Store(fixture_db), "table1", "cpu-xs", "EN1", name="90/10")
    rare = next(p for p in panel.points if (p.run_name, p.language) == ("90/10", "EN2"))
    assert rare.lo < rare.teff < rare.hi and rare.wide is False
    assert [(r.measure, r.language) for r in panel.seeds] == [
        ("ppl", "EN1"),
        ("ppl", "EN2"),
        ("teff", "EN1"),
        ("teff", "EN2"),
    ]
    text = teff_text(panel, ids["90/10"]).plain
    assert f"TEff 3.22 [{rare.lo:.2f}, {rare.hi:.2f}] law" in text
    assert "90/10 over seeds (95%): PPL EN1 112.8 n=1" in text and "TEff EN2 3.22 [2.87, 3.61] n=1" in text


def test_teff_panel_without_baselines_says_why(fixture_db):
    panel = run_panels.teff_panel(Store(fixture_db), "quick", "cpu-xs", "EN1")
    assert panel.curve == [] and "needs finished monolingual baselines" in panel.law_error


def test_alignment_summaries(fixture_db):
    ids = _ids(fixture_db)
    store = Store(fixture_db)
    panel = run_panels.alignment(store, ids["90/10"])
    assert panel.step == 600 and panel.hidden == {"EN1–EN2": HIDDEN_SIM["90/10"]}
    assert {(e["matrix"], e["similarity"], e["control"]) for e in panel.embeddings} == {
        ("input", 0.28, 0.01),
        ("output", 0.21, 0.01),
    }
    assert len(panel.gradients["EN1–EN2"]) == 12
    assert panel.gradient_mean["EN1–EN2"] == pytest.approx(GRAD_SIM["90/10"] + 0.01, abs=0.01)
    empty = run_panels.alignment(store, ids["4-stage"])
    assert empty.step is None and empty.hidden == {}


# -- plots --------------------------------------------------------------------------------


def test_log10_ticks_are_labelled_in_data_units():
    fmt = Log10Formatter()
    ticks = fmt.get_ticks(math.log10(2e5), math.log10(3e6))
    assert fmt.get_labels_for_ticks(ticks) == ["300k", "1M", "3M"]
    assert ticks == pytest.approx([math.log10(3e5), 6.0, math.log10(3e6)])
    assert fmt.get_labels_for_ticks(fmt.get_ticks(2.0, math.log10(2100))) == ["100", "300", "1k"]
    assert human(2_457_600) == "2.46M" and human(950) == "950"


def test_decimate_keeps_extremes_and_ends():
    x = np.arange(10_000, dtype=float)
    y = np.sin(x / 300.0)
    y[4321] = 50.0  # a spike must survive
    dx, dy = decimate(x, y, 100)
    assert len(dx) <= 202 and dx[0] == 0 and dx[-1] == 9_999
    assert 50.0 in dy and np.all(np.diff(dx) > 0)
    short = decimate([1, 2, 3], [4, 5, 6], 100)
    assert list(short[0]) == [1, 2, 3]


@pytest.mark.asyncio
async def test_plot_coalesces_updates_between_redraws():
    from textual.app import App

    class One(App):
        def compose(self):
            yield XPlot(id="p", max_hz=0.001)  # the tick never comes during the test

    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        plot = app.query_one(XPlot)
        figures = [Figure([Series("a", [0, 1], [1, k])]) for k in range(2, 7)]
        plot.show(figures[0])  # the first frame is drawn at once
        for fig in figures[1:]:
            plot.show(fig)  # these wait; each replaces the one before
        await pilot.pause()
        assert plot.draws == 1 and plot._pending is figures[-1]
        plot._flush()
        plot._flush()  # nothing new: no redraw
        assert plot.draws == 2 and plot._shown is figures[-1]


def test_figures_from_panels(fixture_db):
    store = Store(fixture_db)
    rid = _ids(fixture_db)["90/10"]
    fig = curves_figure(run_panels.curves(store, rid))
    assert [s.label for s in fig.series] == ["EN1 train", "EN2 train", "EN1 eval", "EN2 eval"] and fig.log_y
    teff = teff_figure(run_panels.teff_panel(store, "table1", "cpu-xs", "EN1"), rid, ["EN1", "EN2"])
    labels = [s.label for s in teff.series]
    assert labels == ["mono law", "mono runs", "other mixes", "EN1 @MLTE", "EN2 @MLTE"]
    assert teff.log_x and teff.log_y


# -- the screen -----------------------------------------------------------------------------


def _app(db: Path, name: str):
    rid = _ids(db)[name]
    return screen_app(db.with_name("experiments.toml"), db, lambda: RunScreen(rid))


@pytest.mark.asyncio
async def test_run_screen_shows_a_failed_runs_reason(fixture_db):
    app = _app(fixture_db, "4-stage")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        header = str(app.screen.query_one("#run-header").render())
        assert "failed" in header and FAILED_MESSAGE in header
        await pilot.press("3")
        await settle(pilot)
        assert "no alignment measurements yet" in str(app.screen.query_one("#align-emb").render())


@pytest.mark.asyncio
async def test_run_screen_of_an_unknown_run_says_so(fixture_db):
    app = screen_app(fixture_db.with_name("experiments.toml"), fixture_db, lambda: RunScreen("0123456789ab"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "is not in fixture.duckdb yet" in str(app.screen.query_one("#run-header").render())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@pytest.mark.parametrize("tab", ["1", "2", "3"])
def test_run_screen_snapshot(snap_compare, fixture_db, size, tab):
    async def show(pilot):
        await settle(pilot)
        await pilot.press(tab)
        await settle(pilot)

    assert snap_compare(_app(fixture_db, "90/10"), terminal_size=size, run_before=show)


def test_running_run_snapshot(snap_compare, fixture_db):
    assert snap_compare(_app(fixture_db, "90→10 / 10→90"), terminal_size=(80, 24), run_before=settle)
