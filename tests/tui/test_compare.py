"""The compare screen: overlaid PPL curves of the picked runs and xling report's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.store import Store
from tests.tui.fixture_db import screen_app, settle
from xling_tui.screens.compare import ALL, CompareScreen, compare_figure, fetch_compare, languages_of

PICKED = ["50/50", "90/10", "90→10 / 10→90"]


def _ids(db: Path, names: list[str]) -> list[str]:
    by_name = dict(Store(db).query("SELECT name, run_id FROM runs").rows)
    return [by_name[n] for n in names]


def test_fetch_has_curves_names_and_the_experiments_report(fixture_db):
    ids = _ids(fixture_db, PICKED)
    data = fetch_compare(fixture_db, ids + ["0123456789ab"])
    assert data.error == "not in the database: 0123456789ab"
    assert [data.names[i][0] for i in ids] == PICKED
    assert languages_of(data) == ["EN1", "EN2"]
    (report,) = data.reports
    assert report.experiment == "table1"
    main = report.tables[0]
    rows = {r[0]: dict(zip(main.columns, r)) for r in main.rows}
    assert rows["90/10"]["TEff EN2"] == "3.22 [2.87, 3.61] n=1" and rows["90/10"]["p(EN2)"] == "10%"
    assert "90→10 / 10→90" not in rows  # still running: the report has finished runs only
    (paired,) = data.comparisons  # the finished picked schedules, the first against the other
    assert paired.comparison.a == "50/50" and paired.comparison.b == "90/10"
    teff = next(r for r in paired.comparison.rows if (r.measure, r.language) == ("teff", "EN2"))
    assert teff.change.startswith("-59") and teff.verdict == "n=1: no verdict"


def test_overlay_one_language_or_all(fixture_db):
    ids = _ids(fixture_db, PICKED)
    data = fetch_compare(fixture_db, ids)
    both = compare_figure(data, ids, ALL)
    assert [s.label for s in both.series] == [f"{n} s0 {l}" for n in PICKED for l in ("EN1", "EN2")]
    assert len({s.style for s in both.series}) == 6
    rare = compare_figure(data, ids, "EN2")
    assert [s.label for s in rare.series] == [f"{n} s0" for n in PICKED]
    assert rare.series[2].x[-1] == 1_228_800  # the running run stops where it is


@pytest.mark.asyncio
async def test_language_key_cycles(fixture_db):
    ids = _ids(fixture_db, PICKED)
    app = screen_app(fixture_db.with_name("experiments.toml"), fixture_db, lambda: CompareScreen(ids))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        seen = [app.screen.language]
        for _ in range(3):
            await pilot.press("l")
            seen.append(app.screen.language)
        assert seen == [ALL, "EN1", "EN2", ALL]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@pytest.mark.parametrize("tab", ["1", "2"])
def test_compare_snapshot(snap_compare, fixture_db, size, tab):
    ids = _ids(fixture_db, PICKED)

    async def show(pilot):
        await settle(pilot)
        await pilot.press(tab)
        await settle(pilot)

    app = screen_app(fixture_db.with_name("experiments.toml"), fixture_db, lambda: CompareScreen(ids))
    assert snap_compare(app, terminal_size=size, run_before=show)
