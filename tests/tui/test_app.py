"""The app shell: command line, help, command palette, start-up imports, run actions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xling_tui import actions
from xling_tui.app import XlingApp, main

asyncio = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parents[2]


# -- command line ------------------------------------------------------------------------


def test_main_refuses_a_directory_as_database(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["experiments.toml", "--db", str(tmp_path)])
    assert exc.value.code == 2
    assert "is a directory" in capsys.readouterr().err


def test_main_refuses_a_bad_refresh(capsys):
    with pytest.raises(SystemExit):
        main(["--refresh", "0"])
    assert "--refresh must be positive" in capsys.readouterr().err


def test_start_up_imports_neither_torch_nor_duckdb():
    """The first frame must not wait for torch (seconds) or the database (it is read on a thread)."""
    code = (
        "import sys, xling_tui.app, xling_tui.screens.dashboard; "
        "print(sorted(m for m in ('torch', 'duckdb', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_app_exposes_paths_absolute(tmp_path):
    app = XlingApp(Path("x.toml"), Path("r.duckdb"))
    assert app.config_path.is_absolute() and app.db_path.is_absolute()
    assert app.config_path.name == "x.toml" and app.refresh_every == 2.0


# -- help and palette --------------------------------------------------------------------


@asyncio
async def test_help_lists_the_keys_of_every_screen(make_app):
    from xling_tui.screens.help import help_table

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        assert type(app.screen).__name__ == "DashboardScreen"
    from rich.console import Console

    console = Console(width=100, record=True, color_system=None)
    console.print(help_table())
    text = console.export_text()
    for expected in ("Dashboard", "SQL", "launch", "delete", "filter", "ctrl+p", "Run panels", "Schedule designer"):
        assert expected in text, expected


@asyncio
async def test_palette_offers_app_actions_and_runs_by_name(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):
            if getattr(app.screen, "data", None) is not None:
                break
            await pilot.pause(0.05)
        titles = [t for t, _, _ in app.palette_actions()]
        assert {"SQL query", "schedule designer", "help", "launch", "delete", "filter"} <= set(titles)
        assert any(label.endswith("/90/10") for _, label, _ in app.known_runs())
        await pilot.press("ctrl+p")
        assert app.screen.__class__.__name__ == "CommandPalette"
        await pilot.press(*"launch")
        await pilot.pause(0.5)
        await pilot.press("enter")  # the dashboard's launch, run on the dashboard
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "ChoiceScreen"
        await pilot.press("escape", "ctrl+p")
        await pilot.press(*"SQL query")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "SqlScreen"


@asyncio
async def test_designer_key_opens_the_designer_on_the_selected_experiment(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("right_square_bracket", "e")
        assert type(app.screen).__name__ == "DesignerScreen"


@asyncio
async def test_unexpected_errors_are_notified_and_logged(make_app, fixture_db):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError as exc:
            app.report_error(exc, "testing")
        await pilot.pause()
        [note] = [n for n in app._notifications if "boom" in n.message]
        assert "internal error while testing" in note.title
        log = fixture_db.with_name("xling-tui.errors.log")
        assert "ZeroDivisionError" in log.read_text()
        app.report_error(actions.ActionError("run x is running"), "delete")
        await pilot.pause()
        assert any(n.message == "run x is running" for n in app._notifications)


@asyncio
async def test_cancelling_a_slurm_run_without_scancel_shows_the_message(make_app, fixture_db, tmp_path, monkeypatch):
    """A backend's refusal is the user's to act on: its message, not "internal error" and a traceback."""
    from engine.launch.state import all_run_dirs
    from engine.runs import layout
    from engine.runs.events import Queued, Submitted, append_event

    run_dir = all_run_dirs(layout.artefacts_root(fixture_db))[0]
    append_event(run_dir, Queued(run_dir.name))
    append_event(run_dir, Submitted(run_dir.name, "slurm", "4242", "login"))
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no sacct, no scancel: not a Slurm login node
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.run_action_thread("cancel", [run_dir.name])
        for _ in range(100):
            if any("scancel" in n.message for n in app._notifications):
                break
            await pilot.pause(0.05)
        [note] = [n for n in app._notifications if "scancel" in n.message]
        assert note.message == "scancel not found: run xling cancel on a Slurm login node"
        assert note.title == "cancel" and note.severity == "error"
    assert not fixture_db.with_name("xling-tui.errors.log").exists()


# -- run actions (no screen) -------------------------------------------------------------


def test_annotations_round_trip_and_bad_ids(fixture_db):
    from engine.launch.state import all_run_dirs
    from engine.runs import layout

    run_id = all_run_dirs(layout.artefacts_root(fixture_db))[0].name
    actions.write_annotations(fixture_db, run_id[:10], tags=actions.parse_tags("a, b a  c"))
    got = actions.write_annotations(fixture_db, run_id, note="  why  ")
    assert got.tags == ["a", "b", "c"] and got.note == "why"
    with pytest.raises(actions.ActionError, match="no run"):
        actions.write_annotations(fixture_db, "zzzz", tags=[])


def test_cancel_takes_a_queued_run_out_of_the_queue(tmp_path, tiny_toml):
    from engine.config.spec import load_experiments
    from engine.launch.queue import enqueue
    from engine.launch.state import state_of

    db = tmp_path / "r.duckdb"
    from engine.runs import layout

    states = enqueue(layout.artefacts_root(db), load_experiments(tiny_toml))
    rid = states[0].spec.run_id
    [line] = actions.cancel_runs(db, [rid])
    assert "cancelled" in line
    assert state_of(states[0].run_dir).status == "cancelled"
    assert "deleted" in actions.delete_run(db, rid)
    assert not states[0].run_dir.exists()
    with pytest.raises(actions.ActionError):
        actions.resume_runs(db, [rid])


def test_launch_runs_headless_detached_and_logs_beside_the_database(tmp_path, tiny_toml):
    """A real tiny launch: the process is in its own session and finishes the experiment."""
    db = tmp_path / "r.duckdb"
    proc = actions.launch_experiment(tiny_toml, db, "tiny", device="cpu")
    assert os.getsid(proc.pid) == proc.pid  # its own session: survives the TUI's terminal
    code = proc.wait(timeout=600)
    log = Path(proc.log_path).read_text()
    assert code == 0, log
    assert proc.log_path.parent == tmp_path / "r.runs" / "launches"
    assert "xling_tui.cli run" in log.splitlines()[0]
    from db.store import Store

    statuses = Store(db).query("SELECT status, count(*) FROM runs GROUP BY ALL").rows
    assert statuses == [("done", 3)]


@asyncio
async def test_a_fresh_folder_shows_what_to_do(tmp_path):
    """No config and no database yet: the app says so on the dashboard and creates nothing."""
    from engine.launch.devices import FakeSource

    app = XlingApp(
        tmp_path / "experiments.toml",
        tmp_path / "xling.duckdb",
        gpu_source=FakeSource([]),
        refresh_every=3600,
        gpu_every=3600,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            if app.screen.data is not None:
                break
            await pilot.pause(0.05)
        status = str(app.screen.query_one("#status-line").render())
        assert "no such file" in status and "no runs" in status
    assert not (tmp_path / "xling.duckdb").exists()


@asyncio
async def test_a_launch_that_fails_is_reported_with_its_log(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
        proc.log_path = tmp_path / "launch.log"
        app.track_process(proc, "launch of table1")
        for _ in range(100):
            if not app.launched:
                break
            await pilot.pause(0.1)
        await pilot.pause()
        assert not app.launched
        assert any("exit code 2" in n.message and "launch.log" in n.message for n in app._notifications)
