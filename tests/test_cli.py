"""The `xling` CLI end to end through typer's CliRunner, with real worker processes."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from xling_tui.cli.main import app

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "results.duckdb")


@pytest.fixture(scope="module")
def finished_once(tmp_path_factory, tiny_corpus):
    """One real `xling run` shared by the read-only tests of this module."""
    from tests.conftest import TINY

    folder = tmp_path_factory.mktemp("cli")
    toml = folder / "experiments.toml"
    toml.write_text(TINY.format(corpus=tiny_corpus))
    db = str(folder / "results.duckdb")
    result = invoke("run", str(toml), "--db", db, "--device", "cpu")
    assert result.exit_code == 0, result.output
    return toml, db


@pytest.fixture
def finished(finished_once, tmp_path):
    """A private copy of the finished run folder and database, free to change."""
    import shutil

    toml, db = finished_once
    src = toml.parent
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst / "experiments.toml", str(dst / "results.duckdb")


def test_run_fills_the_database(finished):
    _, db = finished
    out = invoke(
        "sql", "SELECT name, status, tokens, total_tokens FROM runs ORDER BY name", "--db", db, "--format", "json"
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["name"] for r in rows] == ["90/10", "mono EN1 100%", "mono EN1 50%"]
    assert all(r["status"] == "done" and r["tokens"] == r["total_tokens"] for r in rows)
    evals = invoke("sql", "SELECT DISTINCT language FROM evals ORDER BY 1", "--db", db, "--format", "csv")
    assert list(csv.reader(io.StringIO(evals.output))) == [["language"], ["EN1"], ["EN2"]]
    per_lang = invoke(
        "sql",
        "SELECT count(*) AS n FROM train_metrics WHERE lang_loss['EN2'] IS NOT NULL",
        "--db",
        db,
        "--format",
        "json",
    )
    assert json.loads(per_lang.output)[0]["n"] > 0


def test_monolingual_ppl_falls_with_budget_and_beats_untrained(finished):
    _, db = finished
    q = """SELECT r.name, e.step, e.ppl FROM evals e JOIN runs r USING (run_id)
           WHERE e.language = 'EN1' AND r.kind = 'baseline' ORDER BY r.name, e.step"""
    rows = json.loads(invoke("sql", q, "--db", db, "--format", "json").output)
    final = {r["name"]: r["ppl"] for r in rows}  # last step wins
    untrained = [r["ppl"] for r in rows if r["step"] == 0]
    assert final["mono EN1 100%"] < final["mono EN1 50%"] < min(untrained) / 2


def test_rerun_skips_finished_runs_and_a_changed_spec_is_new(finished):
    toml, db = finished
    again = invoke("run", str(toml), "--db", db, "--device", "cpu")
    assert again.exit_code == 0
    assert "0 to run, 3 finished" in again.output
    toml.write_text(toml.read_text().replace("EN1 = [90], EN2 = [10]", "EN1 = [80], EN2 = [20]"))
    changed = invoke("run", str(toml), "--db", db, "--device", "cpu")
    assert changed.exit_code == 0
    assert "1 to run, 2 finished" in changed.output
    n = json.loads(invoke("sql", "SELECT count(*) AS n FROM runs", "--db", db, "--format", "json").output)[0]["n"]
    assert n == 4


def test_status_lists_runs_with_best_ppl(finished):
    _, db = finished
    out = invoke("status", "--db", db, "--format", "json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert len(rows) == 3 and all(r["status"] == "done" for r in rows)
    assert any("EN2" in (r.get("best_ppl") or "") for r in rows)


def test_bad_config_is_exit_2_with_location(tiny_toml, db):
    tiny_toml.write_text(tiny_toml.read_text().replace("EN1 = [90], EN2 = [10]", "EN1 = [90], EN2 = [20]"))
    result = invoke("run", str(tiny_toml), "--db", db)
    assert result.exit_code == 2
    assert "experiments.toml:" in result.output and "stage 1" in result.output and "110%" in result.output
    assert "Traceback" not in result.output


def test_unknown_experiment_is_exit_2(tiny_toml, db):
    result = invoke("run", str(tiny_toml), "-e", "nope", "--db", db)
    assert result.exit_code == 2 and "nope" in result.output


def test_bad_sql_is_a_message_not_a_traceback(finished):
    _, db = finished
    result = invoke("sql", "SELEC nonsense", "--db", db)
    assert result.exit_code == 2
    assert "error" in result.output.lower() and "Traceback" not in result.output


def test_sql_is_read_only(finished):
    _, db = finished
    result = invoke("sql", "DELETE FROM runs", "--db", db)
    assert result.exit_code == 2
    rows = json.loads(invoke("sql", "SELECT count(*) AS n FROM runs", "--db", db, "--format", "json").output)
    assert rows[0]["n"] == 3


def test_status_without_results_says_so(tmp_path):
    result = invoke("status", "--db", str(tmp_path / "none.duckdb"))
    assert result.exit_code == 2 and "xling run" in result.output


def test_xling_db_environment_variable(finished, monkeypatch):
    _, db = finished
    monkeypatch.setenv("XLING_DB", db)
    out = invoke("sql", "SELECT count(*) AS n FROM runs", "--format", "json")
    assert json.loads(out.output)[0]["n"] == 3


def test_help_on_every_command():
    for cmd in ([], ["run"], ["sql"], ["status"]):
        result = invoke(*cmd, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_figures_without_matplotlib_say_which_extra_to_install(tmp_path, monkeypatch):
    """matplotlib is the optional `figures` extra: without it, --figures is a clear exit 2."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    result = invoke("report", "--db", str(tmp_path / "r.duckdb"), "--figures", str(tmp_path / "figs"))
    assert result.exit_code == 2 and "pip install 'xling[figures]'" in " ".join(result.output.split())
    assert not (tmp_path / "figs").exists()
