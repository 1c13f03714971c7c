"""The runs dashboard: formatting helpers, and Pilot tests on the fixture database."""

from __future__ import annotations

import math

import pytest

from xling_tui.data_source import RunRow
from xling_tui.widgets.runs_table import device_text, filter_rows, human_duration, progress_bar, sort_rows, sparkline

asyncio = pytest.mark.asyncio


def _row(run_id: str, name: str, status: str = "done", **kw) -> RunRow:
    base = dict(
        run_id=run_id,
        experiment="exp",
        name=name,
        kind="mix",
        status=status,
        step=10,
        total_steps=10,
        tokens=100,
        total_tokens=100,
        tokens_per_s=None,
        loss=None,
        device="cpu",
        host="h",
        pid=None,
        best_ppl=(),
        loss_curve=(),
    )
    return RunRow(**(base | kw))


def test_filter_matches_every_term_in_name_status_tags_and_note():
    rows = [
        _row("a", "50/50", tags=("good",)),
        _row("b", "90/10", status="failed", note="diverged at 3k"),
        _row("c", "90/10", status="running"),
    ]
    assert [r.run_id for r in filter_rows(rows, "90/10")] == ["b", "c"]
    assert [r.run_id for r in filter_rows(rows, "90/10 running")] == ["c"]
    assert [r.run_id for r in filter_rows(rows, "#good")] == ["a"]
    assert [r.run_id for r in filter_rows(rows, "DIVERGED")] == ["b"]
    rows.append(_row("d", "mix", best_ppl=(("EN1", 10.0), ("FR", 12.0))))
    assert [r.run_id for r in filter_rows(rows, "fr")] == ["d"]
    assert filter_rows(rows, "", experiment="other") == []


def test_a_shared_run_is_listed_under_every_experiment_that_asks_for_it():
    rows = [_row("a", "50/50", experiments=("fig1", "table1")), _row("b", "90/10", experiments=("table1",))]
    assert [r.run_id for r in filter_rows(rows, "", experiment="fig1")] == ["a"]
    assert [r.run_id for r in filter_rows(rows, "", experiment="table1")] == ["a", "b"]


def test_where_a_run_is_names_its_cluster_job_and_filters_on_it():
    local = _row("a", "50/50", device="cuda:0", host="box", pid=4242, backend="local", job_id="4242")
    slurm = _row("b", "90/10", device="cuda:0", host="node7", backend="slurm", job_id="81234")
    assert device_text(local) == "cuda:0@box"
    assert device_text(slurm) == "cuda:0@node7 slurm 81234"
    queued = _row("c", "x", status="queued", device=None, host=None, backend="slurm", job_id="81235")
    assert device_text(queued) == "slurm 81235"
    assert [r.run_id for r in filter_rows([local, slurm, queued], "8123")] == ["b", "c"]
    # the scheduler's word on the job while the run goes; not once it is over
    waiting = _row(
        "d", "x", status="queued", device=None, host=None, backend="slurm", job_id="9", job_state="PENDING (Priority)"
    )
    assert device_text(waiting) == "slurm 9 PENDING (Priority)"
    running = _row("e", "x", status="running", host="node7", backend="slurm", job_id="10", job_state="RUNNING")
    assert device_text(running) == "cpu@node7 slurm 10 RUNNING"
    done = _row("f", "x", status="done", host="node7", backend="slurm", job_id="11", job_state="RUNNING")
    assert device_text(done) == "cpu@node7 slurm 11"


def test_sort_by_progress_and_best_ppl_of_the_weakest_language():
    rows = [
        _row("a", "x", status="running", step=2),
        _row("b", "y", status="running", step=7),
        _row("c", "z", best_ppl=(("EN1", 100.0), ("EN2", 300.0))),
        _row("d", "w", best_ppl=(("EN1", 150.0), ("EN2", 160.0))),
    ]
    assert [r.run_id for r in sort_rows(rows, "progress")] == ["a", "b", "c", "d"]
    assert [r.run_id for r in sort_rows(rows, "progress", reverse=True)][:2] == ["c", "d"]
    assert [r.run_id for r in sort_rows(rows, "best PPL")][:2] == ["d", "c"]
    with pytest.raises(KeyError):
        sort_rows(rows, "nonsense")


def test_eta_only_while_running_from_throughput():
    row = _row("a", "x", status="running", tokens=1000, total_tokens=4000, tokens_per_s=100.0)
    assert row.eta_seconds == pytest.approx(30.0)
    assert _row("a", "x", status="failed", tokens_per_s=100.0).eta_seconds is None


def test_sparkline_scales_and_keeps_the_untrained_tail_empty():
    assert sparkline([4.0, 3.0, 2.0, 1.0], width=4) == "█▆▃▁"
    assert sparkline([4.0, None, 2.0, None, None], width=5) == "██▁"  # gap filled, tail blank
    assert sparkline([50.0], width=4, lo=0, hi=100) in ("▄", "▅")
    assert sparkline([None, math.nan]) == ""


def test_progress_bar_and_durations():
    assert progress_bar(0.5, "running", width=4).plain == "██    50%"
    assert progress_bar(None, "queued").plain == ""
    assert human_duration(59) == "59s" and human_duration(3700) == "1h01m" and human_duration(None) == ""


# -- Pilot ---------------------------------------------------------------------------------


async def _loaded(pilot) -> None:
    """Waits for the first dashboard fetch and GPU sample (both on threads)."""
    app = pilot.app
    for _ in range(200):
        board = app.screen
        if getattr(board, "data", None) is not None and board.query_one("#gpus").sample is not None:
            break
        await pilot.pause(0.05)
    await pilot.pause()


def _names(app) -> list[str]:
    from xling_tui.widgets.runs_table import RunsTable

    table = app.screen.query_one(RunsTable)
    by_id = {r.run_id: r for r in app.screen.data.runs}
    return [by_id[rid].name for rid in table.shown_ids]


@asyncio
async def test_dashboard_lists_the_fixture_runs_with_status_progress_and_best_ppl(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot)
        rows = {r.name: r for r in app.screen.data.runs}
        assert len(rows) == 8
        running = rows["90→10 / 10→90"]
        assert running.status == "running" and 0.55 < running.progress < 0.65
        assert running.tokens_per_s and running.eta_seconds and running.eta_seconds > 0
        assert dict(rows["90/10"].best_ppl).keys() == {"EN1", "EN2"}
        assert sum(v is not None for v in rows["50/50"].loss_curve) > 10
        assert rows["4-stage"].status == "failed"
        experiments = {e.name: e for e in app.screen.data.experiments}
        assert experiments["table1"].done == 6 and experiments["quick"].runs == 0


@asyncio
async def test_filter_then_sort_then_escape_restores(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot)
        await pilot.press("slash", *"mono", "enter")
        assert _names(app) == ["mono EN1 100%", "mono EN1 50%", "mono EN1 25%", "mono EN1 10%"]
        await pilot.press("s", "s")  # default -> name -> status
        await pilot.press("s")  # -> progress
        assert app.screen.sort_key == "progress"
        await pilot.press("S")
        assert app.screen.sort_reverse
        await pilot.press("escape")  # clears the filter
        assert len(_names(app)) == 8
        await pilot.press("right_square_bracket", "right_square_bracket")  # all -> table1 -> quick
        assert _names(app) == []


@asyncio
async def test_tag_and_note_are_saved_in_the_run_folder_and_survive_a_rebuild(make_app, fixture_db):
    from db.store import Store

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot)
        await pilot.press("slash", *"90/10", "enter")
        [rid] = [r.run_id for r in app.screen.data.runs if r.name == "90/10"]
        await pilot.press("t", *"good, paper", "enter")
        for _ in range(100):
            row = {r.run_id: r for r in app.screen.data.runs}[rid]
            if row.tags:
                break
            await pilot.pause(0.05)
        assert row.tags == ("good", "paper")
        await pilot.press("n", *"rare language gains", "enter")
        for _ in range(100):
            if {r.run_id: r for r in app.screen.data.runs}[rid].note:
                break
            await pilot.pause(0.05)
    store = Store(fixture_db)
    store.rebuild()
    assert store.query("SELECT tags, note FROM runs WHERE run_id = ?", [rid]).rows == [
        (["good", "paper"], "rare language gains")
    ]


@asyncio
async def test_delete_asks_first_and_removes_the_folder_on_yes(make_app, fixture_db):
    from engine.runs import layout

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot)
        await pilot.press("slash", *"4-stage", "enter")
        [rid] = [r.run_id for r in app.screen.data.runs if r.name == "4-stage"]
        folder = layout.run_dir(fixture_db, rid)
        await pilot.press("D")
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")  # no: nothing happens
        await pilot.pause(0.2)
        assert folder.exists()
        await pilot.press("D", "y")
        for _ in range(100):
            if rid not in {r.run_id for r in app.screen.data.runs}:
                break
            await pilot.pause(0.05)
        assert not folder.exists()
        assert rid not in {r.run_id for r in app.screen.data.runs}


@asyncio
async def test_delete_refuses_a_live_run(make_app, fixture_db):
    """The fixture's running run claims a pid that exists (ours), so it counts as alive."""
    import os

    from engine.runs import layout
    from engine.runs.events import EventLog, Heartbeat

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot)
        [row] = [r for r in app.screen.data.runs if r.status == "running"]
        folder = layout.run_dir(fixture_db, row.run_id)
        with EventLog(folder) as log:  # make the worker look alive: our own pid, a fresh heartbeat
            log.emit(Heartbeat(row.run_id, step=row.step or 0, pid=os.getpid()))
        events = (folder / "events.jsonl").read_text().splitlines()
        started = [e for e in events if '"kind":"started"' in e]
        assert started
        (folder / "events.jsonl").write_text(
            "\n".join(e.replace('"pid":4194000', f'"pid":{os.getpid()}') for e in events) + "\n"
        )
        await pilot.press("slash", *"running", "enter", "D", "y")
        for _ in range(100):
            if any("cancel it before deleting" in n.message for n in app._notifications):
                break
            await pilot.pause(0.05)
        assert folder.exists()
        assert any("cancel it before deleting" in n.message for n in app._notifications)


@asyncio
async def test_marking_and_compare_and_open_reach_the_run_screens(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot)
        await pilot.press("space", "space")
        assert len(app.screen.marked) == 2
        await pilot.press("c")
        assert type(app.screen).__name__ == "CompareScreen"
        await pilot.press("escape")
        assert type(app.screen).__name__ == "DashboardScreen"
        await pilot.press("escape")  # clears the marks
        assert not app.screen.marked
        await pilot.press("o")
        assert type(app.screen).__name__ == "RunScreen"


@asyncio
async def test_a_run_logged_elsewhere_appears_on_the_next_poll(make_app, fixture_db):
    """What a headless `xling run` in another session does: write a run folder; the poller ingests it."""
    import json

    from engine.runs import layout
    from engine.runs.events import EventLog, Queued, Started

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot)
        [spec_dir] = [layout.run_dir(fixture_db, r.run_id) for r in app.screen.data.runs if r.name == "50/50"]
        spec = json.loads((spec_dir / "spec.json").read_text())
        spec |= {"run_id": "feedbeef00000000", "name": "from elsewhere"}
        new = layout.run_dir(fixture_db, "feedbeef00000000")
        new.mkdir()
        (new / "spec.json").write_text(json.dumps(spec))
        with EventLog(new) as log:
            log.emit(Queued("feedbeef00000000"))
            log.emit(
                Started(
                    "feedbeef00000000",
                    device="cuda:0",
                    host="gpu-box",
                    pid=1,
                    total_steps=spec["total_steps"],
                    total_tokens=spec["total_tokens"],
                )
            )
        app.screen.request_fetch()
        for _ in range(200):
            if "from elsewhere" in {r.name for r in app.screen.data.runs}:
                break
            await pilot.pause(0.05)
        row = {r.name: r for r in app.screen.data.runs}["from elsewhere"]
        assert row.status == "running" and row.device == "cuda:0" and row.host == "gpu-box"


def test_incremental_refresh_equals_a_fresh_read(fixture_db, fixture_config):
    """The poller re-reads only the recent bins of a moving run; the result must be what a
    fresh dashboard reads from scratch, also after a resume rewrote earlier steps."""
    from db.store import Store
    from engine.runs import layout
    from engine.runs.events import EventLog, Started, TrainMetric
    from xling_tui.data_source import DashboardSource

    source = DashboardSource(fixture_config, fixture_db, clock=lambda: 0.0)
    first = source.fetch()
    [run] = [r for r in first.runs if r.status == "running"]
    assert source.fetch() is None  # nothing new: nothing posted

    def log(*events):
        with EventLog(layout.run_dir(fixture_db, run.run_id)) as out:
            for e in events:
                out.emit(e)
        Store(fixture_db).ingest()

    step = run.step
    log(
        *(
            TrainMetric(run.run_id, step=s, tokens=s * 4096, lr=1e-3, loss=1.5, lang_loss={}, tokens_per_s=99.0)
            for s in range(step + 10, step + 90, 10)
        )
    )
    moved = {r.run_id: r for r in source.fetch().runs}[run.run_id]
    fresh = {r.run_id: r for r in DashboardSource(fixture_config, fixture_db).fetch().runs}[run.run_id]
    assert moved.loss_curve == fresh.loss_curve and moved.tokens_per_s == fresh.tokens_per_s == 99.0
    assert moved.loss_curve != run.loss_curve

    # a resume from an early checkpoint re-logs steps that fall in bins the poller had kept
    log(
        Started(
            run.run_id,
            device="cpu",
            host="h",
            pid=1,
            total_steps=run.total_steps,
            total_tokens=run.total_tokens,
            resumed_from=20,
        ),
        *(
            TrainMetric(run.run_id, step=s, tokens=s * 4096, lr=1e-3, loss=9.0, lang_loss={}, tokens_per_s=7.0)
            for s in range(30, 200, 10)
        ),
    )
    resumed = {r.run_id: r for r in source.fetch().runs}[run.run_id]
    fresh = {r.run_id: r for r in DashboardSource(fixture_config, fixture_db).fetch().runs}[run.run_id]
    assert resumed.loss_curve == fresh.loss_curve


@asyncio
async def test_log_key_shows_the_worker_log_and_follows_it(make_app, fixture_db):
    from textual.widgets import Log

    from engine.runs import layout

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _loaded(pilot)
        [rid] = [r.run_id for r in app.screen.data.runs if r.name == "4-stage"]
        log_file = layout.run_dir(fixture_db, rid) / "worker.log"
        log_file.write_text("step 10 loss 5.1\n")
        await pilot.press("slash", *"4-stage", "enter", "l")
        assert type(app.screen).__name__ == "LogScreen"
        widget = app.screen.query_one(Log)
        for _ in range(100):
            if "loss 5.1" in "\n".join(widget.lines):
                break
            await pilot.pause(0.05)
        with open(log_file, "a") as fh:
            fh.write("out of memory\n")
        app.screen.read_more()
        for _ in range(100):
            if "out of memory" in "\n".join(widget.lines):
                break
            await pilot.pause(0.05)
        assert "\n".join(widget.lines).split() == "step 10 loss 5.1 out of memory".split()
        await pilot.press("escape")
        assert type(app.screen).__name__ == "DashboardScreen"


@asyncio
async def test_cancel_asks_then_takes_the_run_out(make_app):
    """The fixture's running run has no live worker here: cancel marks it cancelled in its log."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot)
        await pilot.press("slash", *"running", "enter", "x")
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("y")
        for _ in range(200):
            if not [r for r in app.screen.data.runs if r.status == "running"]:
                break
            await pilot.pause(0.05)
        assert [r.status for r in app.screen.data.runs if r.name.startswith("90→10")] == ["cancelled"]
        await pilot.press("escape", "slash", *"cancelled", "enter", "R")  # resume starts a headless `xling resume`
        for _ in range(100):
            if app.launched:
                break
            await pilot.pause(0.05)
        [(proc, what)] = app.launched
        assert "resume" in what
        proc.terminate()  # before its workers start (it is still importing); after, SIGTERM stops them
        proc.wait(timeout=60)


def test_a_waiting_run_shows_waiting_and_filters_on_it():
    from xling_tui.widgets.runs_table import row_cells

    reason = "waiting for a CPU slot: 2 of 2 cores held by xling runs (ab12cd34)"
    waiting = _row("w", "90/10", status="queued", message=reason)
    queued, failed = _row("q", "x", status="queued"), _row("f", "y", status="failed", message="boom")
    assert waiting.waiting == reason and queued.waiting is None and failed.waiting is None
    assert [row_cells(r, False)[2].plain for r in (waiting, queued, failed)] == ["waiting", "queued", "failed"]
    assert [r.run_id for r in filter_rows([waiting, queued, failed], "waiting")] == ["w"]


@asyncio
async def test_the_status_line_says_why_a_run_waits(make_app, fixture_db):
    """A launcher that found no free CPU slot logs a queued event with its reason."""
    import json

    from engine.runs import layout
    from engine.runs.events import EventLog, Queued

    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await _loaded(pilot)
        [spec_dir] = [layout.run_dir(fixture_db, r.run_id) for r in app.screen.data.runs if r.name == "50/50"]
        spec = json.loads((spec_dir / "spec.json").read_text()) | {"run_id": "cafe00000000", "name": "patient"}
        new = layout.run_dir(fixture_db, "cafe00000000")
        new.mkdir()
        (new / "spec.json").write_text(json.dumps(spec))
        with EventLog(new) as log:
            log.emit(Queued("cafe00000000"))
            log.emit(Queued("cafe00000000", message="waiting for a CPU slot: 2 of 2 cores held by xling runs"))
        app.screen.request_fetch()
        for _ in range(200):
            if "patient" in {r.name for r in app.screen.data.runs}:
                break
            await pilot.pause(0.05)
        await pilot.pause()
        line = str(app.screen.query_one("#status-line").render())
        assert "table1/patient waiting for a CPU slot: 2 of 2 cores held by xling runs" in line
