"""A user's SQL (``xling sql`` and the TUI's SQL screen) reads the results and nothing else.

Every attack of issue 11 item 2 is tried on the one sandbox both front ends use, and
through the CLI; a capped table says what it left out, CSV and JSON stream every row.
"""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from db.store import QueryError, Store, StoreError
from db.user_sql import UserQuery, lock_down
from xling_tui.cli.main import app
from xling_tui.cli.output import write_csv, write_json

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "results.duckdb")
    store.ingest()  # an empty results database
    return store


@pytest.fixture
def other_db(tmp_path: Path) -> Path:
    """Someone else's database beside the results, with one row to protect."""
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE precious AS SELECT 42 AS answer")
    con.close()
    return path


def _secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("name,password\nroot,hunter2\n")
    return path


def attacks(tmp_path: Path, other_db: Path) -> dict[str, str]:
    secret = _secret(tmp_path)
    return {
        "copy to a file": f"COPY (SELECT 1 AS a) TO '{tmp_path / 'out.csv'}'",
        "copy a table to a file": f"COPY runs TO '{tmp_path / 'runs.csv'}'",
        "export the database": f"EXPORT DATABASE '{tmp_path / 'dump'}'",
        "attach read-write": f"ATTACH '{other_db}' AS o (READ_WRITE)",
        "attach then delete": f"ATTACH '{other_db}' AS o (READ_WRITE); DELETE FROM o.precious",
        "read_csv of another file": f"SELECT * FROM read_csv('{secret}')",
        "read_text of another file": f"SELECT * FROM read_text('{secret}')",
        "a file as a table": f"SELECT * FROM '{secret}'",
        "glob the disk": f"SELECT * FROM glob('{tmp_path}/*')",
        "install an extension": "INSTALL httpfs",
        "load an extension": "LOAD httpfs",
        "a url": "SELECT * FROM read_parquet('https://example.com/x.parquet')",
        "turn access back on": "SET enable_external_access = true",
        "reset the lock": "RESET lock_configuration",
        "write the results": "DELETE FROM runs",
        "create a table": "CREATE TABLE mine AS SELECT 1",
    }


def _files(tmp_path: Path) -> set[str]:
    return {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")}


def test_every_attack_is_refused_and_changes_nothing(tmp_path, store, other_db):
    tried = attacks(tmp_path, other_db)
    before = _files(tmp_path)
    for what, sql in tried.items():
        with pytest.raises(StoreError):
            UserQuery(store, sql).run(10)
            pytest.fail(f"{what}: ran")
    assert _files(tmp_path) == before  # nothing written, no other file made
    con = duckdb.connect(str(other_db), read_only=True)
    assert con.execute("SELECT answer FROM precious").fetchall() == [(42,)]
    con.close()


def test_the_settings_alone_refuse_files_extensions_and_unlocking(tmp_path, store, other_db):
    """Beneath the statement check: a connection after ``lock_down`` refuses the same
    attacks by DuckDB's own settings, so neither layer relies on the other."""
    with store.connect(read_only=True, wait=5) as con:
        lock_down(con)
        for what, sql in attacks(tmp_path, other_db).items():
            if what in ("write the results", "create a table"):
                continue  # the read-only connection's business, tested above
            with pytest.raises(duckdb.Error):
                con.execute(sql)
                pytest.fail(f"{what}: ran")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "dump").exists()


def test_refusals_name_the_statement_and_what_to_do_instead(store, tmp_path):
    with pytest.raises(QueryError, match=r"COPY.*--format csv"):
        UserQuery(store, f"COPY runs TO '{tmp_path / 'x.csv'}'").run(10)
    with pytest.raises(QueryError, match="no SQL statement"):
        UserQuery(store, "  ;  ").run(10)


def test_python_objects_are_not_tables(store):
    secret_frame = {"password": ["hunter2"]}  # noqa: F841 - DuckDB's replacement scan would find it
    with pytest.raises(QueryError):
        UserQuery(store, "SELECT * FROM secret_frame").run(10)


def test_allowed_files_are_read_never_written(tmp_path, store):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "extra.csv").write_text("run,weight\nabc,2.5\n")
    rows = UserQuery(store, f"SELECT * FROM '{mine}/extra.csv'", allow_files=[mine]).run(10).rows
    assert rows == [("abc", 2.5)]
    with pytest.raises(QueryError, match="COPY"):
        UserQuery(store, f"COPY (SELECT 1) TO '{mine}/out.csv'", allow_files=[mine]).run(10)
    with pytest.raises(QueryError):  # the allowance is that folder only
        UserQuery(store, f"SELECT * FROM read_text('{_secret(tmp_path)}')", allow_files=[mine]).run(10)
    assert sorted(p.name for p in mine.iterdir()) == ["extra.csv"]
    with pytest.raises(StoreError, match="no such file"):
        UserQuery(store, "SELECT 1", allow_files=[tmp_path / "nope"]).run(10)


def test_the_next_connection_is_not_locked_down(store):
    UserQuery(store, "SELECT 1").run(1)
    store.ingest()  # a writer after a user's query: its settings died with its connection
    assert store.query("SELECT current_setting('enable_external_access')").rows == [(True,)]


def test_rows_left_out_are_counted_without_keeping_them(store):
    result = UserQuery(store, "SELECT * FROM range(25000)").run(100, count_rest=True)
    assert len(result.rows) == 100 and result.truncated and result.left_out == 24900
    quick = UserQuery(store, "SELECT * FROM range(25000)").run(100)
    assert quick.truncated and quick.left_out is None


# -- through the CLI --------------------------------------------------------------------


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_cli_refuses_every_attack_with_exit_2(tmp_path, store, other_db):
    tried = attacks(tmp_path, other_db)
    before = _files(tmp_path)
    for what, sql in tried.items():
        result = invoke("sql", sql, "--db", str(store.db_path))
        assert result.exit_code == 2, f"{what}: {result.output}"
        assert "Traceback" not in result.output
    assert _files(tmp_path) == before


def test_cli_help_states_the_guarantee():
    out = invoke("sql", "--help").output
    assert "Read-only" in out and "nothing is written" in out and "--allow-files" in out


def test_cli_allow_files_reads_a_users_csv(tmp_path, store):
    (tmp_path / "extra.csv").write_text("a\n7\n")
    sql = f"SELECT a FROM '{tmp_path / 'extra.csv'}'"
    assert invoke("sql", sql, "--db", str(store.db_path)).exit_code == 2
    ok = invoke("sql", sql, "--db", str(store.db_path), "--allow-files", str(tmp_path), "-f", "json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output) == [{"a": 7}]


def test_cli_table_is_capped_and_says_how_many_rows_it_left_out(store):
    out = invoke("sql", "SELECT range AS n FROM range(5000)", "--db", str(store.db_path), "--max-rows", "20")
    assert out.exit_code == 0, out.output
    assert "20 row(s); 4980 more not shown" in out.output
    assert " 19 " in out.output and " 20 " not in out.output


class _Sink(io.TextIOBase):
    """Counts what is written and keeps none of it."""

    chars = 0

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)


def test_csv_and_json_stream_without_holding_the_rows(store):
    """Held all at once, 120k rows are ~25 MB of Python tuples, strings and output."""
    sql = "SELECT range AS n, 'x' || range AS s FROM range(120000)"
    for write in (write_csv, write_json):
        sink = _Sink()
        tracemalloc.start()
        try:
            with UserQuery(store, sql).open() as rows:
                write(rows.columns, rows.batches(), sink)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert sink.chars > 1_500_000 and peak < 8_000_000, (write.__name__, peak)


def test_cli_csv_and_json_give_every_row(store):
    out = invoke(
        "sql", "SELECT range AS n, 'x' || range AS s FROM range(12000)", "--db", str(store.db_path), "-f", "csv"
    )
    rows = list(csv.reader(io.StringIO(out.output)))
    assert rows[0] == ["n", "s"] and len(rows) == 12001 and rows[-1] == ["11999", "x11999"]
    js = invoke("sql", "SELECT range AS n FROM range(3000)", "--db", str(store.db_path), "-f", "json")
    assert [r["n"] for r in json.loads(js.output)] == list(range(3000))


def test_cli_reader_never_creates_a_database(tmp_path):
    target = tmp_path / "nowhere" / "results.duckdb"
    for cmd in (["sql", "SELECT 1"], ["status"], ["report"]):
        result = invoke(*cmd, "--db", str(target))
        assert result.exit_code == 2 and "xling run" in result.output
    assert not (tmp_path / "nowhere").exists()


def test_csv_into_a_closed_pipe_stops_quietly(store):
    """`xling sql ... -f csv | head -1`: no BrokenPipeError traceback."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "xling_tui.cli", "sql", "SELECT * FROM range(300000)", "--db", str(store.db_path)]
    proc = subprocess.Popen([*cmd, "-f", "csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().rstrip() == b"range"
    proc.stdout.close()  # the reader goes away, as head does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err
