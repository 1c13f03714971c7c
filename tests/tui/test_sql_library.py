"""The SQL screen's memory and helpers: history and saved queries kept beside the database
(and surviving a restart), completion of names, export of the whole result, the row count."""

from __future__ import annotations

import json

import duckdb
import pytest

from db.export import ExportError, check_target, export_query
from db.queries import schema_catalog
from db.store import QueryError, Store
from db.user_sql import UserQuery
from tests.tui.test_dashboard_snapshots import wait_loaded
from xling_tui.query_library import HISTORY_LIMIT, HistoryCursor, LibraryError, QueryLibrary, library_path
from xling_tui.screens.sql import ROW_CAP
from xling_tui.sql_completion import Catalog, Relation, complete

asyncio = pytest.mark.asyncio


# -- the library file -------------------------------------------------------------------


def test_library_lives_beside_the_database_and_merges_two_writers(tmp_path):
    path = library_path(tmp_path / "lab.duckdb")
    assert path == tmp_path / "lab.sql-history.json"
    one, two = QueryLibrary.load(path), QueryLibrary.load(path)
    one.add("SELECT 1")
    one.save("first", "SELECT 1")
    one.persist()
    two.add("SELECT 2")
    two.persist()  # must not erase what the other app wrote
    again = QueryLibrary.load(path)
    assert again.history == ["SELECT 1", "SELECT 2"] and again.saved == {"first": "SELECT 1"}
    again.add("SELECT 1")  # run again: moves to the end, once
    assert again.history == ["SELECT 2", "SELECT 1"]
    again.forget("first")
    again.persist()
    assert QueryLibrary.load(path).saved == {}


def test_library_beside_an_unwritable_database_goes_to_xdg_state(tmp_path, monkeypatch):
    import xling_tui.query_library as module

    monkeypatch.setattr(module.os, "access", lambda path, mode: False)  # as for a read-only share
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = library_path(tmp_path / "lab.duckdb")
    assert path.parent == tmp_path / "state" / "xling" and path.name.startswith("lab-")
    assert path != library_path(tmp_path / "other" / "lab.duckdb")  # one file per database


def test_history_is_capped_and_names_are_checked(tmp_path):
    library = QueryLibrary.load(tmp_path / "h.json")
    for i in range(HISTORY_LIMIT + 20):
        library.add(f"SELECT {i}")
    assert len(library.history) == HISTORY_LIMIT and library.history[-1] == f"SELECT {HISTORY_LIMIT + 19}"
    with pytest.raises(LibraryError, match="needs a name"):
        library.save("  ", "SELECT 1")
    with pytest.raises(LibraryError, match="empty"):
        library.save("x", "  ")
    assert library.save("  two   words ", "SELECT 1") == "two words"


def test_a_file_that_is_not_ours_is_set_aside_not_trusted(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"format": 1, "history": [{"__class__": "os.system"}], "saved": {}}))
    library = QueryLibrary.load(path)
    assert library.history == [] and "set aside" in library.warning
    assert (tmp_path / "h.json.bad").exists() and not path.exists()


def test_search_finds_saved_then_history_newest_first(tmp_path):
    library = QueryLibrary.load(tmp_path / "h.json")
    for sql in ("SELECT * FROM runs", "SELECT * FROM evals", "SELECT count(*) FROM runs"):
        library.add(sql)
    library.save("rare language", "SELECT ppl FROM evals WHERE language = 'EN2'")
    assert library.search("runs") == [(None, "SELECT count(*) FROM runs"), (None, "SELECT * FROM runs")]
    assert library.search("rare")[0][0] == "rare language"
    assert library.search("evals")[0][0] == "rare language" and len(library.search("evals")) == 2


def test_history_cursor_walks_like_a_shell():
    cursor = HistoryCursor(["a", "b"])
    assert cursor.step(+1, "draft") is None  # nothing newer than the draft
    assert cursor.step(-1, "draft") == "b" and cursor.step(-1, "b") == "a"
    assert cursor.step(-1, "a") is None  # the oldest
    assert cursor.step(+1, "a") == "b" and cursor.step(+1, "b") == "draft"


# -- completion -------------------------------------------------------------------------


def _catalog(db) -> Catalog:
    return Catalog(tuple(Relation(n, k, c, tuple(cols)) for n, k, c, cols in schema_catalog(Store(db))))


def test_catalog_has_tables_columns_types_and_docs(fixture_db):
    catalog = _catalog(fixture_db)
    teff = catalog.relation("teff")
    assert teff.kind == "table" and "Token efficiency" in teff.comment
    cols = {name: (dtype, doc) for name, dtype, doc in teff.columns}
    assert cols["tokens_seen"][0] == "BIGINT" and "exact tokens the run saw" in cols["tokens_seen"][1]


def test_completion_of_tables_columns_aliases_and_functions(fixture_db):
    catalog = _catalog(fixture_db)
    assert complete("SELECT * FROM train_m", catalog).candidates == ("train_metrics",)
    got = complete("SELECT tokens_", catalog, "SELECT tokens_ FROM train_metrics")
    assert got.candidates[0] == "tokens_per_s" and got.suffix() == "per_s"  # the named table's column first
    assert complete("SELECT r.na", catalog, "SELECT r.na FROM runs r").candidates == ("name",)
    assert complete("SELECT e.la", catalog, "SELECT e.la FROM evals AS e").candidates == ("language",)
    assert complete("SELECT quantile_c", catalog).candidates == ("quantile_cont",)
    assert complete("sel", catalog).candidates == ("select",) and complete("SEL", catalog).candidates == ("SELECT",)
    assert complete("SELECT 'run", catalog).candidates == ()  # inside a string literal


# -- the row count and the export ---------------------------------------------------------


def test_a_capped_answer_knows_the_size_of_the_whole_result(fixture_db):
    store = Store(fixture_db)
    result = UserQuery(store, "SELECT * FROM range(2500);").run(ROW_CAP, count_rest=True)  # as the screen asks
    assert len(result.rows) == 1000 and result.truncated and result.left_out == 1500
    multi = UserQuery(store, "SELECT 1; SELECT * FROM range(1500)").run(ROW_CAP, count_rest=True)
    assert len(multi.rows) + multi.left_out == 1500  # the last statement's result
    small = UserQuery(store, "SELECT name FROM runs").run(ROW_CAP, count_rest=True)
    assert len(small.rows) == 8 and not small.truncated


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_export_writes_the_whole_result_with_its_types(fixture_db, tmp_path, suffix):
    store = Store(fixture_db)
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / f"out{suffix}"
    sql = "SELECT run_id, step, lang_loss, time FROM train_metrics ORDER BY run_id, step"
    assert export_query(UserQuery(store, sql), target) == 283
    reader = {".csv": "read_csv", ".parquet": "read_parquet", ".json": "read_json"}[suffix]
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM {reader}('{target}')").fetchone()[0] == 283
    if suffix == ".parquet":
        types = dict(con.execute(f"DESCRIBE SELECT * FROM '{target}'").fetchall()[i][:2] for i in range(4))
        assert types == {
            "run_id": "VARCHAR",
            "step": "BIGINT",
            "lang_loss": "MAP(VARCHAR, DOUBLE)",
            "time": "TIMESTAMP",
        }
    if suffix == ".csv":
        assert b"\r" not in target.read_bytes()
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # nothing left behind


def test_export_refuses_bad_targets(tmp_path):
    with pytest.raises(ExportError, match="end the name with"):
        check_target(tmp_path / "out.xlsx")
    with pytest.raises(ExportError, match="does not exist"):
        check_target(tmp_path / "missing" / "out.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        check_target(tmp_path / "dir.csv")


def test_export_runs_read_only_without_file_access(fixture_db, tmp_path):
    store = Store(fixture_db)
    with pytest.raises(QueryError, match="file system operations are disabled"):
        export_query(UserQuery(store, "SELECT * FROM read_csv('/etc/passwd')"), tmp_path / "x.csv")
    with pytest.raises(QueryError, match="read-only"):
        export_query(UserQuery(store, "DELETE FROM runs RETURNING *"), tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists() and store.query("SELECT count(*) FROM runs").rows[0][0] == 8


# -- Pilot: the screen ---------------------------------------------------------------------


async def open_sql_screen(pilot):
    """The SQL screen from the dashboard, once its query library has loaded."""
    await wait_loaded(pilot)
    await pilot.press("colon")
    screen = pilot.app.screen
    for _ in range(200):
        if screen.library is not None:
            break
        await pilot.pause(0.05)
    await pilot.pause()
    return screen


async def run_sql(pilot, screen, sql: str) -> None:
    """Types ``sql`` into the box, runs it and waits for its answer."""
    screen.query_one("#sql-editor").replace_text(sql)
    await pilot.press("ctrl+r")
    for _ in range(400):
        if not screen.running:
            break
        await pilot.pause(0.05)
    await pilot.pause()


async def _idle(pilot, group: str) -> None:
    for _ in range(200):
        if not any(w.group == group and not w.is_finished for w in pilot.app.workers):
            return
        await pilot.pause(0.05)


@asyncio
async def test_history_survives_a_restart(make_app):
    first = make_app()
    async with first.run_test(size=(100, 30)) as pilot:
        screen = await open_sql_screen(pilot)
        await run_sql(pilot, screen, "SELECT count(*) AS n FROM evals")
        await run_sql(pilot, screen, "SELECT name FROM runs ORDER BY name")
        await pilot.press("ctrl+s", *"names", "enter")
        await pilot.pause()
        await _idle(pilot, "sql-library")
    second = make_app()
    async with second.run_test(size=(100, 30)) as pilot:
        screen = await open_sql_screen(pilot)
        editor = screen.query_one("#sql-editor")
        editor.replace_text("draft")
        editor.move_cursor((0, 0))
        await pilot.press("up")
        assert editor.text == "SELECT name FROM runs ORDER BY name"
        await pilot.press("up")
        assert editor.text == "SELECT count(*) AS n FROM evals"
        editor.move_cursor(editor.document.end)
        await pilot.press("down", "down")
        assert editor.text == "draft"
        await pilot.press("f8")
        await pilot.pause()
        await pilot.press(*"names")  # the search box: the saved query comes first
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert type(second.screen).__name__ == "SqlScreen" and editor.text == "SELECT name FROM runs ORDER BY name"


@asyncio
async def test_tab_completes_a_column_name(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_sql_screen(pilot)
        editor = screen.query_one("#sql-editor")
        editor.replace_text("")
        await pilot.press(*"SELECT tokens_se")
        await pilot.pause()
        assert editor.suggestion == "en"
        await pilot.press("tab")
        assert editor.text == "SELECT tokens_seen"
        editor.replace_text("")
        await pilot.press(*"SELECT tokens_")
        await pilot.pause()
        assert "tokens_per_s" in str(screen.query_one("#sql-title").render())
        await pilot.press("ctrl+n", "tab")
        assert editor.text in ("SELECT tokens_seen", "SELECT tokens_per_s") and editor.text != "SELECT tokens_"


@asyncio
async def test_export_writes_the_file_it_said_and_asks_before_replacing(make_app, tmp_path):
    app = make_app()
    target = tmp_path / "runs.json"
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_sql_screen(pilot)
        await run_sql(pilot, screen, "SELECT * FROM range(2500) t(i)")
        assert "the first 1,000 of 2,500 rows" in str(screen.query_one("#sql-status").render())
        await pilot.press("ctrl+e")
        await pilot.pause()
        app.screen.query_one("#export-path").value = str(target)
        await pilot.press("enter")
        await _idle(pilot, "sql-export")
        await pilot.pause()
        said = str(screen.query_one("#sql-status").render())
        assert said == f"wrote 2,500 rows to {target}"
        assert len(json.loads(target.read_text())) == 2500
        before = target.read_bytes()
        await run_sql(pilot, screen, "SELECT 1 AS one")
        await pilot.press("ctrl+e")
        await pilot.pause()
        app.screen.query_one("#export-path").value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")  # keep it
        await pilot.pause()
        assert target.read_bytes() == before
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+e")
        await pilot.pause()
        app.screen.query_one("#export-path").value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("y")
        await _idle(pilot, "sql-export")
        await pilot.pause()
        assert json.loads(target.read_text()) == [{"one": 1}]


@asyncio
async def test_schema_browser_inserts_a_name(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_sql_screen(pilot)
        tree = screen.query_one("#sql-schema")
        assert not tree.display  # narrower than 120 columns: hidden until asked for
        editor = screen.query_one("#sql-editor")
        editor.replace_text("SELECT * FROM ")
        await pilot.press("ctrl+b")
        assert tree.display and tree.has_focus
        tables = [n.data for n in tree.root.children[0].children]
        assert "teff" in tables and "runs" in tables
        tree.move_cursor(tree.root.children[0].children[tables.index("teff")])
        await pilot.press("enter")
        await pilot.pause()
        assert editor.text == "SELECT * FROM teff" and editor.has_focus
