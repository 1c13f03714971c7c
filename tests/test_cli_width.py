"""`xling status` and `xling report` at 80 and 200 columns: one line per run, the least
useful columns left out first; CSV lines end with a plain newline."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from db.store import Store
from tests.tui.fixture_db import FAILED_MESSAGE, build_fixture_db
from xling_tui.fit_width import Column, fitted_table

cli = importlib.import_module("xling_tui.cli.main")  # the package re-exports a function named main
runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build_fixture_db(tmp_path_factory.mktemp("width"))


def _run(monkeypatch, width: int, *args: str) -> str:
    """The command's stdout as written (click's ``output`` would turn \\r\\n into \\n)."""
    monkeypatch.setattr(cli, "console", Console(width=width, force_terminal=False, color_system=None))
    result = runner.invoke(cli.app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes.decode("utf-8")


def _runs(db: Path) -> list[tuple[str, str]]:
    return Store(db).query("SELECT run_id, name FROM runs ORDER BY name").rows


@pytest.mark.parametrize("width", [80, 200])
def test_status_is_one_line_per_run(monkeypatch, db, width):
    out = _run(monkeypatch, width, "status", "--db", str(db))
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width
    for run_id, name in _runs(db):
        (line,) = [ln for ln in lines if ln.startswith(run_id[:8]) and name in ln and "%" in ln]
        assert "EN1 " in line  # the best PPL is on the run's line, not stacked under it
    failed = dict((name, rid) for rid, name in _runs(db))["4-stage"]
    assert f"{failed[:8]} 4-stage: {FAILED_MESSAGE}" in lines  # why it failed: a line of its own
    if width == 80:
        assert "fixture-host" not in out and "not shown at 80 columns: experiment, tokens, where" in out
    else:
        assert "fixture-host pid 4194000" in out and "not shown" not in out
        assert "table1" in out and "2.5M" in out


def test_status_drops_columns_in_order_as_the_terminal_narrows(monkeypatch, db):
    out = _run(monkeypatch, 100, "status", "--db", str(db))
    assert "not shown at 100 columns: experiment, where" in out  # tokens and device fit at 100
    out = _run(monkeypatch, 60, "status", "--db", str(db))
    header = out.splitlines()[0].split()
    assert header[:3] == ["run", "name", "status"]


@pytest.mark.parametrize("width", [80, 200])
def test_report_main_table_is_one_line_per_run(monkeypatch, db, width):
    out = _run(monkeypatch, width, "report", "table1", "--db", str(db))
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width
    lines = lines[: lines.index("Hidden-state similarity per layer (Table 2 layout)")]  # the main table
    for name in ("mono EN1 100%", "mono EN1 10%", "50/50", "90/10"):
        assert len([ln for ln in lines if ln.startswith(name + " ")]) == 1
    (row,) = [ln for ln in lines if ln.startswith("90/10 ") and "3.22 [2.87, 3.61]" in ln]
    assert "1.06 [0.90, 1.25]" in row  # both TEffs, with their intervals
    if width == 80:  # the shares and then the PPLs go before the TEffs
        assert "not shown at 80 columns: type, tokens, p(EN1), p(EN2), PPL EN1" in out
    else:
        assert all(v in row for v in ("multi", "2.46M", "10%", "112.8", "183.7")) and "not shown" not in out


def test_fitted_table_keeps_essentials_and_drops_by_priority():
    columns = [Column("id", essential=True), Column("low", priority=1), Column("high", priority=9)]
    rows = [["x" * 10, "y" * 10, "z" * 10]]
    _, dropped = fitted_table(columns, rows, width=200)
    assert dropped == []
    _, dropped = fitted_table(columns, rows, width=25)
    assert dropped == ["low"]
    table, dropped = fitted_table(columns, rows, width=5)
    assert dropped == ["low", "high"] and [c.header for c in table.columns] == ["id"]


@pytest.mark.parametrize(
    "args",
    [
        ["sql", "SELECT 5 AS n UNION ALL SELECT 6", "--format", "csv"],
        ["status", "--format", "csv"],
        ["report", "table1", "--format", "csv"],
    ],
)
def test_csv_lines_end_with_a_plain_newline(monkeypatch, db, args):
    out = _run(monkeypatch, 80, *args, "--db", str(db))
    assert "\r" not in out and out.endswith("\n")
    if args[0] == "sql":
        assert out == "n\n5\n6\n"


def test_computed_width_is_what_rich_draws():
    from rich.console import Console as RichConsole
    from rich.measure import Measurement

    from xling_tui.fit_width import table_width

    columns = [Column("run", essential=True), Column("p(EN1)"), Column("PPL EN1")]
    rows = [["[bold]90→10 / 10→90[/]", "90%↘10%", "112.8"], ["mono", "100%", "1100.25"]]
    table, _ = fitted_table(columns, rows, 200)
    console = RichConsole(width=1000)
    drawn = Measurement.get(console, console.options, table).maximum
    assert drawn == table_width([len("90→10 / 10→90"), len("90%↘10%"), len("1100.25")])
