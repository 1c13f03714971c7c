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


# -- alignment over training, the probe, the spec, the log ----------------------------------


def _measure_at_evals(db: Path, name: str) -> str:
    """Gives the fixture run ``name`` what a run with ``eval.alignment_at_evals`` and a probe
    logs: alignment at every evaluation, and probe results at its end. Returns its id."""
    from engine.runs.events import AlignEmbedding, AlignGradient, AlignHidden, EventLog, ProbeResult
    from engine.runs.layout import WORKER_LOG, run_dir

    rid = _ids(db)[name]
    folder = run_dir(db, rid)
    with EventLog(folder) as log:
        for k, step in enumerate((150, 300, 450)):
            common = {"run_id": rid, "step": step, "tokens": step * 4096, "lang_a": "EN1", "lang_b": "EN2", "time": 0.0}
            for layer in range(3):
                log.emit(AlignHidden(**common, layer=layer, similarity=0.1 * (k + 1) + 0.01 * layer, n_sequences=32))
            for matrix in ("input", "output"):
                log.emit(
                    AlignEmbedding(
                        **common, matrix=matrix, similarity=0.05 * k, control=0.01, n_ids=2048, n_anchors=0, bins=[]
                    )
                )
            log.emit(AlignGradient(**common, tensor="blocks.0.attn.qkv.weight", similarity=0.2 * k))
        for lang, acc in (("EN1", 0.91), ("EN2", 0.64)):
            log.emit(
                ProbeResult(
                    rid, step=600, tokens=2_457_600, task="builtin:synthetic", train_language="EN1", language=lang,
                    accuracy=acc, chance=0.5, n_examples=200, train_accuracy=0.97, time=0.0,
                )
            )  # fmt: skip
    (folder / WORKER_LOG).write_text("".join(f"step {i} loss {9 - i / 100:.2f}\n" for i in range(300)) + "done\n")
    Store(db).ingest()
    return rid


def test_alignment_steps_probe_and_spec_panels(fixture_db):
    rid = _measure_at_evals(fixture_db, "50/50")
    store = Store(fixture_db)
    steps = run_panels.alignment_steps(store, rid)
    assert [s.step for s in steps] == [150, 300, 450, 600]
    assert steps[0].hidden["EN1–EN2"] == pytest.approx([0.1, 0.11, 0.12])
    assert steps[-1].hidden["EN1–EN2"] == HIDDEN_SIM["50/50"] and steps[1].gradient["EN1–EN2"] == pytest.approx(0.2)
    probes = run_panels.probe_results(store, rid)
    assert [(p["language"], p["accuracy"]) for p in probes] == [("EN1", 0.91), ("EN2", 0.64)]
    spec = run_panels.run_spec(store, rid)
    assert spec["name"] == "50/50" and spec["run_id"] == rid


def test_spec_panel_shows_exact_tokens_per_language(fixture_db):
    from rich.console import Console

    from engine.config.schedule import Schedule
    from xling_tui.widgets.spec_panel import schedule_table, settings_text

    spec = run_panels.run_spec(Store(fixture_db), _ids(fixture_db)["90→10 / 10→90"])
    console = Console(width=120, record=True)
    console.print(schedule_table(spec))
    console.print(settings_text(spec))
    text = console.export_text()
    exact = Schedule.from_dict(spec["schedule"]).marginal_tokens(600, 32, 128)
    assert exact == {"EN1": 1_228_800, "EN2": 1_228_800}
    assert "0%–50%" in text and "50%–100%" in text and "1.23M" in text and "50.0%" in text
    assert "cpu-xs: 2 layers, d_model 64" in text and "seed 0" in text and "600 steps" in text


def test_log_tail_reads_the_end_and_refuses_odd_run_ids(fixture_db):
    from xling_tui.screens.run_detail import LOG_TAIL_LINES, log_tail

    rid = _measure_at_evals(fixture_db, "50/50")
    tail = log_tail(fixture_db, rid).splitlines()
    assert len(tail) == LOG_TAIL_LINES and tail[-1] == "done" and tail[-2].startswith("step 299 ")
    assert log_tail(fixture_db, "../" + rid) is None and log_tail(fixture_db, "..") is None
    assert log_tail(fixture_db, _ids(fixture_db)["90/10"]) is None  # no worker.log: said so on screen


@pytest.mark.asyncio
async def test_run_screen_new_tabs(fixture_db):
    rid = _measure_at_evals(fixture_db, "50/50")
    app = screen_app(fixture_db.with_name("experiments.toml"), fixture_db, lambda: RunScreen(rid))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        steps = screen.query_one("#align-steps")
        assert steps.display and "alignment over training, EN1–EN2" in str(steps.render())
        tabs = screen.query_one("#run-tabs")
        assert not tabs.get_tab("tab-probe").disabled and tabs.get_tab("tab-probe").display
        await pilot.press("4")
        table = screen.query_one("#probe-body").content
        cells = {c.header: [str(x) for x in c._cells] for c in table.columns}
        assert cells["scored in"] == ["EN1", "EN2 (zero-shot)"] and cells["accuracy"] == ["0.910", "0.640"]
        assert screen.query_one("#log-tail").lines[-1] == "done"
    other = _ids(fixture_db)["90/10"]
    app = screen_app(fixture_db.with_name("experiments.toml"), fixture_db, lambda: RunScreen(other))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert not app.screen.query_one("#align-steps").display  # measured once: no over-training panel
        assert not app.screen.query_one("#run-tabs").get_tab("tab-probe").display  # no probe: no tab


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("tab", ["3", "4", "5", "6"])
def test_run_screen_new_tabs_snapshot(snap_compare, fixture_db, size, tab):
    rid = _measure_at_evals(fixture_db, "50/50")

    async def show(pilot):
        await settle(pilot)
        await pilot.press(tab)
        await settle(pilot)

    app = screen_app(fixture_db.with_name("experiments.toml"), fixture_db, lambda: RunScreen(rid))
    assert snap_compare(app, terminal_size=size, run_before=show)


def test_decimate_is_the_per_bucket_min_and_max():
    rng = np.random.default_rng(7)
    for n, width in ((1000, 100), (401, 200), (9999, 37)):
        x, y = np.arange(n, dtype=float), rng.normal(size=n)
        edges = np.linspace(0, n, width + 1).astype(int)
        keep = {0, n - 1}
        for lo, hi in zip(edges[:-1], edges[1:]):
            keep |= {lo + int(np.argmin(y[lo:hi])), lo + int(np.argmax(y[lo:hi]))}
        dx, dy = decimate(x, y, width)
        assert list(dx) == sorted(keep) and list(dy) == [y[i] for i in sorted(keep)]


@pytest.mark.asyncio
async def test_a_finished_run_is_not_redrawn_when_nothing_changed(fixture_db):
    app = _app(fixture_db, "90/10")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert (screen.loads, screen.renders) == (1, 1)
        for _ in range(2):
            screen.action_reload()
            await settle(pilot)
        assert (screen.loads, screen.renders) == (3, 1)


@pytest.mark.asyncio
async def test_plot_draws_at_once_after_a_quiet_spell(monkeypatch):
    from textual.app import App

    import xling_tui.widgets.plots as plots

    class One(App):
        def compose(self):
            yield XPlot(id="p", max_hz=2.0)

    clock = [100.0]
    monkeypatch.setattr(plots, "monotonic", lambda: clock[0])  # the plot's clock only: the event loop keeps its own
    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        plot = app.query_one(XPlot)
        plot.show(Figure([Series("a", [0, 1], [1, 2])]))
        clock[0] += 0.1
        plot.show(Figure([Series("a", [0, 1], [1, 3])]))  # too soon: waits for the tick
        assert plot.draws == 1 and plot._pending is not None
        clock[0] += 1.0
        plot.show(Figure([Series("a", [0, 1], [1, 4])]))  # a key press after a pause: drawn now
        await pilot.pause()
        assert plot.draws == 2 and plot._pending is None and plot._shown.series[0].y == [1, 4]


@pytest.mark.asyncio
async def test_a_plot_not_laid_out_yet_draws_its_figure_once_it_has_its_width():
    """A figure shown to a hidden plot waits: drawn at a fallback width it would be cut
    to a few points, then drawn again at the real one."""
    from textual.app import App
    from textual.containers import Vertical

    class One(App):
        def compose(self):
            with Vertical(id="pane") as pane:
                pane.display = False
                yield XPlot(id="p")

    app = One()
    async with app.run_test(size=(100, 20)) as pilot:
        plot = app.query_one(XPlot)
        x = list(range(10_000))
        plot.show(Figure([Series("a", x, [math.sin(v / 300) for v in x])]))
        await pilot.pause()
        assert plot.draws == 0 and plot._pending is not None
        app.query_one("#pane").display = True
        await pilot.pause()
        await pilot.pause()
        assert plot.draws == 1 and plot._pending is None
        drawn = len(plot._datasets[0].x)
        assert 2 * 60 < drawn <= 2 * plot.size.width + 2  # min and max per column of the real width


@pytest.mark.asyncio
async def test_a_plot_lays_its_margins_out_once_as_it_mounts(monkeypatch):
    """textual-plot's own on_mount lays the grid out (Textual calls it after XPlot's): the
    narrower margins are set before it, not by three watchers and a second call."""
    from textual.app import App
    from textual.containers import Grid
    from textual_plot import PlotWidget

    laid_out = []
    original = PlotWidget._update_margin_sizes
    monkeypatch.setattr(PlotWidget, "_update_margin_sizes", lambda self: laid_out.append(original(self)))

    class One(App):
        def compose(self):
            yield XPlot(id="p")

    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        grid = app.query_one(Grid)
        assert len(laid_out) == 1
        assert [int(c.value) for c in grid.styles.grid_columns[:1]] == [7]
        assert [int(r.value) for r in (grid.styles.grid_rows[0], grid.styles.grid_rows[2])] == [1, 2]
