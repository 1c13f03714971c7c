"""The experiment view: xling report's table with a row for every schedule (filling in as runs
finish), the law with the mixes at their MLTE, sweeps along each axis; live; 80x24 and 200x60."""

from __future__ import annotations

import gc
import json
import math
from pathlib import Path

import pytest

from db import experiment_view
from db.store import Store
from engine.runs.events import EvalResult, EventLog, Status
from engine.runs.layout import run_dir
from tests.tui.fixture_db import LAW_B, LAW_K, RUNNING, TEFF, screen_app, settle
from xling_tui.screens import base as screen_base
from xling_tui.screens import experiment as experiment_module
from xling_tui.screens.experiment import ExperimentScreen, fetch_experiment, law_figure, sweep_figure, table_rows


def _ids(db: Path) -> dict[str, str]:
    return dict(Store(db).query("SELECT name, run_id FROM runs").rows)


def _finish_running_run(db: Path) -> None:
    """What the live run logs when it reaches its end: the last evaluations, then done."""
    rid = _ids(db)[RUNNING]
    with EventLog(run_dir(db, rid)) as log:
        for lang in ("EN1", "EN2"):
            ppl = LAW_K * TEFF[RUNNING][lang] ** -LAW_B * 2  # a PPL the law reaches in range
            log.emit(EvalResult(rid, step=600, tokens=2_457_600, language=lang, loss=math.log(ppl), ppl=ppl,
                                char_ppl=ppl**0.25, accuracy=0.1, n_tokens=20_000, time=0.0))  # fmt: skip
        log.emit(Status(rid, "done", step=600, time=0.0))
    Store(db).ingest()


def _sweep_anchors(db: Path) -> None:
    """Two runs of the experiment trained with other anchors, as a sweep over
    ``data.anchors`` would have them (the database rebuilt from the run folders)."""
    ids = _ids(db)
    for name, anchors in (("50/50", 0.25), ("90/10", 0.5)):
        path = run_dir(db, ids[name]) / "spec.json"
        spec = json.loads(path.read_text())
        spec["data"]["anchors"] = anchors
        path.write_text(json.dumps(spec))
    Store(db).rebuild()


def test_table_has_a_row_per_schedule_with_where_its_runs_are(fixture_db):
    data = fetch_experiment(fixture_db, "table1")
    columns, rows = table_rows(data.report, data.runs)
    by = {name: dict(zip(columns, cells)) for name, cells in rows}
    assert list(by) == ["mono EN1 100%", "mono EN1 50%", "mono EN1 25%", "mono EN1 10%", "4-stage", "50/50", "90/10",
                        RUNNING]  # fmt: skip
    assert by["90/10"]["TEff EN2"] == "3.22 [2.87, 3.61] n=1" and str(by["90/10"]["runs"]) == "1 done"  # report's cell
    assert str(by[RUNNING]["runs"]) == "1 running 60%" and str(by[RUNNING]["PPL EN2"]) == "…"
    assert by[RUNNING]["p(EN1)"] == "90%↘10%" and by[RUNNING]["tokens"] == "2.46M"  # its settings, already
    assert str(by["4-stage"]["runs"]) == "1 failed"
    assert by["mono EN1 10%"]["TEff EN1"] == "<1.00 n=1"  # the report's marks, kept


def test_law_plot_has_the_law_its_points_and_every_mix_at_its_mlte(fixture_db):
    data = fetch_experiment(fixture_db, "table1")
    colours = {"50/50": "cyan", "90/10": "magenta"}
    fig = law_figure(data.law, colours, ["EN1", "EN2"])
    labels = [s.label for s in fig.series]
    assert labels[:2] == ["mono law", "mono runs"] and "90/10 EN2" in labels and "50/50 EN1" in labels
    rare = next(s for s in fig.series if s.label == "90/10 EN2")
    point = next(p for p in data.law.points if p.run_name == "90/10" and p.language == "EN2")
    assert rare.x == [point.mlte] and rare.y == [point.ppl] and rare.style == "magenta"
    assert fig.log_x and fig.log_y


def test_nothing_new_is_nothing_to_draw(fixture_db):
    first = fetch_experiment(fixture_db, "table1")
    again = fetch_experiment(fixture_db, "table1", first.fingerprint)
    assert again.report is None and again.fingerprint == first.fingerprint
    _finish_running_run(fixture_db)
    moved = fetch_experiment(fixture_db, "table1", first.fingerprint)
    assert moved.report is not None and moved.fingerprint != first.fingerprint


def test_sweep_axes_are_the_settings_the_mixes_differ_in(fixture_db):
    assert experiment_view.sweep_axes(experiment_view.experiment_runs(Store(fixture_db), "table1")) == []
    _sweep_anchors(fixture_db)
    store = Store(fixture_db)
    runs = experiment_view.experiment_runs(store, "table1")
    assert experiment_view.sweep_axes(runs) == ["data.anchors"]
    (sweep,) = experiment_view.sweeps(store, "table1", runs)
    points = {(p.value, p.schedule): p for p in sweep.points}
    assert set(points) == {(0.25, "EN1 50% / EN2 50%"), (0.5, "EN1 90% / EN2 10%")}  # finished runs only
    point = points[(0.5, "EN1 90% / EN2 10%")]
    assert len(point.ppl["EN2"]) == 1
    assert point.teff == {}  # laws are pooled by data: no baseline was trained with these anchors
    fig = sweep_figure(sweep, "ppl", ["cyan", "magenta"])
    assert {s.label for s in fig.series if s.label} == {"EN1 50% / EN2 50% EN1", "EN1 50% / EN2 50% EN2",
                                                        "EN1 90% / EN2 10% EN1", "EN1 90% / EN2 10% EN2"}  # fmt: skip


def _app(db: Path):
    return screen_app(db.with_name("experiments.toml"), db, lambda: ExperimentScreen("table1"))


@pytest.mark.asyncio
async def test_the_table_fills_in_as_a_run_finishes(fixture_db):
    app = _app(fixture_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#exp-table")
        row = screen.row_names.index(RUNNING)
        assert "…" in [str(c) for c in table.get_row_at(row)]
        _finish_running_run(fixture_db)
        screen.action_reload()
        await settle(pilot)
        cells = [str(c) for c in screen.query_one("#exp-table").get_row_at(screen.row_names.index(RUNNING))]
        assert "…" not in cells and "1 done" in cells
        await pilot.press("enter")  # opens the run under the cursor
        await settle(pilot)
        assert type(app.screen).__name__ == "RunScreen"


@pytest.mark.asyncio
async def test_the_table_and_the_law_come_into_view_with_the_first_data(fixture_db, monkeypatch):
    """Until the worker's first read the view says it is loading; the table and the law
    are drawn once, with their data (no empty table or axes first). The collector is held
    off until they are painted."""
    monkeypatch.setattr(screen_base, "COLLECT_AFTER", 0.01)
    monkeypatch.setattr(screen_base, "HOLD_LIMIT", 60.0)

    class Waiting(ExperimentScreen):
        CSS_PATH = str(Path(experiment_module.__file__).with_name(ExperimentScreen.CSS_PATH))  # relative to its module

        def action_reload(self) -> None:  # the test hands it the worker's result
            pass

    app = screen_app(fixture_db.with_name("experiments.toml"), fixture_db, lambda: Waiting("table1"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert "loading" in str(screen.query_one("#exp-header").render())
        assert not screen.query_one("#exp-table").display and not screen.query_one("#exp-law-pane").display
        assert not gc.isenabled()  # opening: no collection until the data is on view
        screen.on_experiment_data(fetch_experiment(fixture_db, "table1"))
        await settle(pilot)
        await pilot.pause(0.1)
        assert gc.isenabled()
        assert screen.query_one("#exp-table").display and screen.query_one("#exp-law-pane").display
        assert screen.query_one("#exp-table").row_count == len(screen.row_names) > 0
        assert screen.query_one("#exp-law").draws == 1


@pytest.mark.asyncio
async def test_dashboard_v_opens_the_experiment(make_app):
    from tests.tui.test_dashboard_snapshots import wait_loaded

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        await pilot.press("v")
        await pilot.pause()
        assert type(app.screen).__name__ == "ExperimentScreen" and app.screen.experiment == "table1"


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_experiment_snapshot(snap_compare, fixture_db, size):
    assert snap_compare(_app(fixture_db), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_experiment_sweeps_snapshot(snap_compare, fixture_db, size):
    _sweep_anchors(fixture_db)

    async def show(pilot):
        await settle(pilot)
        await pilot.press("2", "t")
        await settle(pilot)

    assert snap_compare(_app(fixture_db), terminal_size=size, run_before=show)


@pytest.mark.asyncio
async def test_keys_1_and_2_switch_between_the_law_and_the_sweeps(fixture_db):
    app = _app(fixture_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2")  # no sweep: nothing to switch to
        await settle(pilot)
        assert app.screen.query_one("#exp-law-pane").display and not app.screen.query("#exp-sweep-pane")
    _sweep_anchors(fixture_db)
    app = _app(fixture_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert "2: sweeps along data.anchors" in str(screen.query_one("#exp-header").render())
        await pilot.press("2")
        await settle(pilot)
        assert screen.query_one("#exp-sweep-pane").display and not screen.query_one("#exp-law-pane").display
        assert screen.query_one("#exp-sweep").draws == 1
        await pilot.press("1")
        await settle(pilot)
        assert screen.query_one("#exp-law-pane").display and not screen.query_one("#exp-sweep-pane").display


def test_sweep_languages_keep_their_order(fixture_db):
    """Each language has one marker, the same in the plot and its legend, whatever order the rows came in."""
    _sweep_anchors(fixture_db)
    store = Store(fixture_db)
    (sweep,) = experiment_view.sweeps(store, "table1", experiment_view.experiment_runs(store, "table1"))
    assert all(list(p.teff) == sorted(p.teff) for p in sweep.points if p.teff)
