"""The schedule designer: grid editing, column sums, presets, saving with comments kept, launching."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from engine.config.locate import SpecError
from engine.config.schedule import Schedule
from engine.config.spec import load_experiments
from tests.tui.fixture_db import FIXTURE_CONFIG, screen_app, settle
from xling_tui import toml_edit
from xling_tui.screens.designer import PRESET_CHOICES, TEN_LANGUAGES, DesignerScreen, preset_grid
from xling_tui.widgets.schedule_grid import GridModel, next_language_name

# -- toml_edit ------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "experiments.toml"
    path.write_text(FIXTURE_CONFIG, encoding="utf-8")
    return path


def _draft(path: Path, name: str = "table1") -> tuple[toml_edit.ExperimentDraft, toml_edit.ExperimentDraft]:
    draft = toml_edit.read_draft(toml_edit.load_document(path), name)
    return draft, toml_edit.snapshot(draft)


def test_read_draft_applies_defaults_and_reads_grids(config):
    draft, _ = _draft(config)
    assert (draft.model, draft.tokens, draft.seeds, draft.batch_size, draft.context) == (
        "cpu-xs",
        2_457_600,
        [0],
        32,
        128,
    )
    assert [s.name for s in draft.schedules] == ["50/50", "90/10", "90→10 / 10→90", "4-stage"]
    assert draft.schedules[2].ends == [0.5, 1.0] and draft.schedules[2].percents == [[90, 10], [10, 90]]
    assert draft.schedules[0].ends == [1.0] and not draft.schedules[0].ends_written


def test_unchanged_draft_writes_the_file_back_byte_for_byte(config):
    draft, original = _draft(config)
    assert toml_edit.save(config, draft, original) == FIXTURE_CONFIG


def test_changed_values_keep_comments_style_and_defaults(config):
    draft, original = _draft(config)
    draft.tokens = 3_000_000
    draft.schedules[0].percents = [[60.0], [40.0]]
    text = toml_edit.save(config, draft, original)
    assert "tokens = 3_000_000  # 600 steps of 32 x 128 tokens" in text
    assert "mix = { EN1 = [60], EN2 = [40] }  # balanced" in text
    assert 'model = "cpu-xs"   # a CPU-sized preset' in text  # still only in [defaults]
    assert text.count("model =") == 1
    assert text.startswith("# Experiments for the TUI tests")
    exp = load_experiments(config, ["table1"])[0]
    assert exp.config.tokens == 3_000_000 and exp.config.schedules[0].mix == {"EN1": [60.0], "EN2": [40.0]}


def test_new_schedule_goes_after_the_last_and_the_next_sections_comment_stays_with_it(config):
    draft, original = _draft(config)
    draft.schedules.append(toml_edit.ScheduleDraft("30/70", ["EN1", "EN2"], [0.25, 1.0], [[30.0, 30.0], [70.0, 70.0]]))
    text = toml_edit.save(config, draft, original)
    new = text.index('name = "30/70"')
    assert (
        text.index('name = "4-stage"')
        < new
        < text.index("# A small one with nothing run yet.")
        < text.index("[experiments.quick]")
    )
    assert "ends = [0.25, 1.0]" in text[new:]
    assert [s.name for s in load_experiments(config, ["table1"])[0].config.schedules][-1] == "30/70"


def test_removed_schedule_and_ten_languages_exactly(config):
    draft, original = _draft(config)
    names, ends, percents = preset_grid(TEN_LANGUAGES, draft.languages)
    draft.languages = names
    del draft.schedules[3]
    for sc in draft.schedules:
        sc.languages = names
        sc.percents += [[0.0] * len(sc.ends) for _ in range(len(names) - 2)]
    draft.schedules.append(toml_edit.ScheduleDraft("main 50%", names, ends, percents))
    toml_edit.save(config, draft, original)
    exp = load_experiments(config, ["table1"])[0]
    assert exp.config.languages == [f"EN{i}" for i in range(1, 11)]
    assert [s.name for s in exp.config.schedules] == ["50/50", "90/10", "90→10 / 10→90", "main 50%"]
    mix = exp.runs[3 * len(exp.config.seeds)].schedule_obj().marginal_fractions()
    assert mix["EN1"] == pytest.approx(0.5) and mix["EN7"] == pytest.approx(50 / 9 / 100)


def test_invalid_draft_is_refused_and_the_file_left_alone(config):
    draft, original = _draft(config)
    draft.model = "gigantic"
    with pytest.raises(SpecError, match="unknown model preset 'gigantic'"):
        toml_edit.save(config, draft, original)
    assert config.read_text(encoding="utf-8") == FIXTURE_CONFIG


def test_new_experiment_is_added_whole(config):
    draft = toml_edit.ExperimentDraft(
        "fresh",
        ["FR1", "FR2"],
        "cpu-xxs",
        50_000,
        [0, 1],
        0.1,
        [toml_edit.ScheduleDraft("90/10", ["FR1", "FR2"], [1.0], [[90.0], [10.0]])],
        is_new=True,
    )
    text = toml_edit.save(config, draft, None)
    assert text.startswith(FIXTURE_CONFIG.rstrip("\n"))
    exp = load_experiments(config, ["fresh"])[0]
    assert (exp.config.model, exp.config.tokens, exp.config.seeds, exp.config.data.anchors) == (
        "cpu-xxs",
        50_000,
        [0, 1],
        0.1,
    )


@pytest.mark.parametrize("preset", PRESET_CHOICES)
def test_every_preset_is_a_valid_schedule(preset):
    names, ends, percents = preset_grid(preset, ["EN1", "EN2"])
    schedule = Schedule.from_mix(dict(zip(names, percents)), ends)
    shares = schedule.marginal_fractions()
    assert sum(shares.values()) == pytest.approx(1.0)
    if preset == "90→10 / 10→90":
        assert shares == pytest.approx({"EN1": 0.5, "EN2": 0.5})


def test_grid_model_structure_edits():
    m = GridModel(["EN1", "EN2"], [0.5, 1.0], [[90.0, 10.0], [10.0, 90.0]])
    m.add_stage(0)
    assert m.ends == [0.25, 0.5, 1.0] and m.percents[0] == [90.0, 90.0, 10.0] and m.error() is None
    m.remove_stage(2)
    assert m.ends == [0.25, 1.0] and m.error() is None
    m.percents[1][0] = "ten"
    assert "'ten', not a number" in m.error() and m.marginals() is None and not m.column_ok(0)
    assert next_language_name(["EN1", "EN2"]) == "EN3" and next_language_name(["en", "fr"]) == "L3"


# -- the screen ---------------------------------------------------------------------------


def _app(config: Path, tmp_path: Path, **kw):
    return screen_app(config, tmp_path / "none.duckdb", lambda: DesignerScreen("table1", **kw))


async def _type(pilot, cell: str, text: str) -> None:
    pilot.app.screen.query_one(f"#{cell}").focus()
    await pilot.press("ctrl+a", "ctrl+k", *text)
    await pilot.pause()


@pytest.mark.asyncio
async def test_editing_a_cell_updates_sums_marginals_and_timeline(config, tmp_path):
    app = _app(config, tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        await _type(pilot, "cell-0-0", "70")
        assert str(screen.query_one("#sum-0").render()) == "120 ✗"
        assert screen.query_one("#sum-0").has_class("sum-bad")
        await _type(pilot, "cell-1-0", "30")
        assert str(screen.query_one("#sum-0").render()) == "100 ✓"
        assert str(screen.query_one("#marginal-0").render()) == "70.0%"
        assert "EN1 1.72M · EN2 737k" in str(screen.query_one("#marginal-tokens").render())
        assert screen.query_one("#timeline").schedule.percents == ((70.0,), (30.0,))


@pytest.mark.asyncio
async def test_invalid_column_sum_is_shown_and_not_saved(config, tmp_path):
    app = _app(config, tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await _type(pilot, "cell-0-0", "80")
        message = str(app.screen.query_one("#message").render())
        assert message == "stage 1 (ends at 100%) sums to 130% (EN1 80% + EN2 50%), not 100%"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "schedule '50/50': stage 1" in str(app.screen.query_one("#message").render())
    assert config.read_text(encoding="utf-8") == FIXTURE_CONFIG


@pytest.mark.asyncio
async def test_add_stage_and_language_then_save_keeps_comments(config, tmp_path):
    app = _app(config, tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.query_one("#schedule").value = 1  # 90/10
        await pilot.pause()
        screen.query_one("#cell-0-0").focus()
        await pilot.press("f4")  # split stage 1: 90/10 then 90/10, ends 0.5 / 1.0
        await settle(pilot)
        await _type(pilot, "cell-0-1", "20")  # not 10/90: that is schedule 90→10 / 10→90 already
        await _type(pilot, "cell-1-1", "80")
        await pilot.press("f2")  # a third language, 0% everywhere
        await settle(pilot)
        assert [m.languages for m in screen.models][0] == ["EN1", "EN2", "EN3"]
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert str(screen.query_one("#message").render()).startswith("saved ")
    text = config.read_text(encoding="utf-8")
    # two equal stages need no `ends` line, as the file's own comment says
    assert (
        '[[experiments.table1.schedules]]\nname = "90/10"\nmix = { EN1 = [90, 20], EN2 = [10, 80], EN3 = [0, 0] }'
        in text
    )
    assert 'languages = ["EN1", "EN2", "EN3"]' in text
    for comment in (
        "# A schedule is a grid",
        "# a CPU-sized preset",
        "# balanced",
        "# A small one with nothing run yet.",
    ):
        assert comment in text
    exp = load_experiments(config, ["table1"])[0]
    schedule = next(r for r in exp.runs if r.name == "90/10").schedule_obj()
    assert schedule.ends == (0.5, 1.0) and schedule.marginal_fractions() == pytest.approx(
        {"EN1": 0.55, "EN2": 0.45, "EN3": 0}
    )


@pytest.mark.asyncio
async def test_preset_fills_the_grid(config, tmp_path):
    app = _app(config, tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        app.screen.query_one("#preset").value = TEN_LANGUAGES
        await settle(pilot)
        model = app.screen.model
        assert len(model.languages) == 10 and model.error() is None
        assert str(app.screen.query_one("#cell-3-0").value) == "5.556"
        assert model.percents[3][0] == 50 / 9
        assert app.screen.names[0] == TEN_LANGUAGES


# -- snapshots ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_designer_snapshot(snap_compare, config, tmp_path, size):
    assert snap_compare(_app(config, tmp_path), terminal_size=size, run_before=settle)


def test_designer_snapshot_invalid_sum(snap_compare, config, tmp_path):
    async def edit(pilot):
        await settle(pilot)
        app.screen.query_one("#schedule").value = 2
        await pilot.pause()
        await _type(pilot, "cell-0-0", "80")
        await settle(pilot)

    app = _app(config, tmp_path)
    assert snap_compare(app, terminal_size=(80, 24), run_before=edit)


# -- launching --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_launch_a_tiny_run_and_see_its_curve(tiny_toml, tmp_path):
    """ctrl+r saves and starts a headless `xling run`; F8 opens the run, whose curve appears live."""
    from xling_tui.screens.run_detail import RunScreen
    from xling_tui.widgets.plots import XPlot

    db = tmp_path / "launch.duckdb"
    app = screen_app(tiny_toml, db, lambda: DesignerScreen("tiny", device="cpu"), refresh_every=0.5)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        designer = app.screen
        await pilot.press("ctrl+r")
        await settle(pilot)
        proc = designer.launched_proc
        assert proc is not None, str(designer.query_one("#message").render())
        try:
            expected = [r.run_id for r in load_experiments(tiny_toml, ["tiny"])[0].runs]
            assert designer.launched_runs == expected
            await pilot.press("f8")
            await pilot.pause()
            run_screen = app.screen
            assert isinstance(run_screen, RunScreen) and run_screen.run_id == expected[0]
            plot = run_screen.query_one("#ppl-plot", XPlot)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not _has_eval_curve(plot):
                await pilot.pause(0.5)
            assert _has_eval_curve(plot), Path(proc.log_path).read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=180)


def _has_eval_curve(plot) -> bool:
    shown = plot._shown
    return shown is not None and any(s.label and s.label.endswith("eval") and len(s.x) >= 2 for s in shown.series)


@pytest.mark.asyncio
async def test_switch_experiment_and_create_a_new_one(config, tmp_path):
    app = _app(config, tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.query_one("#experiment").value = "quick"
        await settle(pilot)
        assert screen.experiment == "quick" and screen.names == ["90/10"]
        assert screen.query_one("#tokens").value == "120_000"
        screen.query_one("#experiment").value = "\x00new"
        await settle(pilot)
        await pilot.press(*"mine", "enter")
        await settle(pilot)
        assert screen.experiment == "mine" and screen.names == ["50/50"]
        await _type(pilot, "seeds", "0, 1")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert str(screen.query_one("#message").render()).startswith("saved ")
    exp = load_experiments(config, ["mine"])[0]
    assert exp.config.seeds == [0, 1] and [s.name for s in exp.config.schedules] == ["50/50"]
    assert len(exp.runs) == 2
    assert config.read_text(encoding="utf-8").startswith(FIXTURE_CONFIG.rstrip("\n"))


@pytest.mark.asyncio
async def test_escape_warns_once_about_unsaved_changes(config, tmp_path):
    app = _app(config, tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        assert not app.screen.dirty
        await _type(pilot, "cell-0-0", "60")
        await _type(pilot, "cell-1-0", "40")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DesignerScreen)
        assert "unsaved changes" in str(app.screen.query_one("#message").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DesignerScreen)
    assert config.read_text(encoding="utf-8") == FIXTURE_CONFIG


def test_a_new_draft_takes_the_configs_defaults():
    from engine.config.spec import DataConfig, ExperimentConfig, TrainConfig

    draft = toml_edit.ExperimentDraft.new("fresh", ["A", "B"], 10_000)
    assert draft.model == ExperimentConfig.model_fields["model"].default and draft.seeds == [0]
    assert draft.anchors == DataConfig.model_fields["anchors"].default and draft.is_new
    assert (draft.batch_size, draft.context) == (TrainConfig().batch_size, TrainConfig().context)
